/**
 * The documentation's relative links resolve (the file, and the heading a
 * #fragment names), and the README stays a short front door: the details
 * live in docs/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');

function markdownFiles(): string[] {
  const files = ['README.md', 'agent/README.md', 'bench/README.md', 'bench/leaks/README.md', 'bench/scenarios/README.md', 'deploy/README.md'];
  for (const f of fs.readdirSync(path.join(ROOT, 'docs'))) if (f.endsWith('.md')) files.push(`docs/${f}`);
  return files.filter((f) => fs.existsSync(path.join(ROOT, f)));
}

/** Relative link targets of a Markdown text, code spans and blocks excluded. */
function relativeLinks(markdown: string): Array<{ file: string; fragment: string | undefined }> {
  const text = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  const out: Array<{ file: string; fragment: string | undefined }> = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [file, fragment] = target.split('#') as [string, string | undefined];
    out.push({ file: decodeURIComponent(file), fragment });
  }
  return out;
}

/** The #fragments GitHub gives a Markdown file's headings. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#+\s+(.+)$/gm)) {
    out.add(m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-'));
  }
  return out;
}

function brokenLinks(file: string): string[] {
  const abs = path.join(ROOT, file);
  const broken: string[] = [];
  for (const { file: target, fragment } of relativeLinks(fs.readFileSync(abs, 'utf8'))) {
    const resolved = target === '' ? abs : path.resolve(path.dirname(abs), target);
    if (!fs.existsSync(resolved)) broken.push(target);
    else if (fragment !== undefined && resolved.endsWith('.md') && !anchors(fs.readFileSync(resolved, 'utf8')).has(fragment)) {
      broken.push(`${target}#${fragment}`);
    }
  }
  return broken;
}

describe('documentation', () => {
  it('finds the links and headings it checks', () => {
    expect(relativeLinks('[a](docs/x.md#y) [b](https://e.org) [c](#z) `[d](no.md)` [e](../f "t")')).toEqual([
      { file: 'docs/x.md', fragment: 'y' },
      { file: '', fragment: 'z' },
      { file: '../f', fragment: undefined },
    ]);
    expect([...anchors('# A title\n## GET /api/v1/leaks\n```\n# not a heading\n```\n')]).toEqual(['a-title', 'get-apiv1leaks']);
  });

  for (const file of markdownFiles()) {
    it(`every relative link in ${file} resolves`, () => {
      expect(brokenLinks(file)).toEqual([]);
    });
  }

  it('README.md is under 9 KB', () => {
    expect(fs.statSync(path.join(ROOT, 'README.md')).size).toBeLessThan(9 * 1024);
  });
});
