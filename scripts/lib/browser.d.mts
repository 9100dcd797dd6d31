import type { BrowserContext } from 'playwright-core';

export declare const CHROMIUM: string;
export declare const CHROMIUM_ARGS: string[];
export declare function browserMissing(): string | null;
export declare function launchBrowser(viewport?: { width?: number; height?: number }): Promise<{ context: BrowserContext; close(): Promise<void> }>;
