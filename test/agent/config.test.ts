import { describe, expect, it } from 'vitest';
import { enabledFromEnv, resolveConfig } from '../../agent/src/config';

describe('resolveConfig: option ?? env ?? default', () => {
  it('uses defaults with an empty environment', () => {
    const r = resolveConfig({}, {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.warnings).toEqual([]);
    expect(r.config).toMatchObject({
      collector: '127.0.0.1:7801',
      intervalMs: 60_000,
      samplingIntervalBytes: 524_288,
      stackDepth: 64,
      logLevel: 'warn',
      disableInlining: true,
      timeoutMs: 10_000,
      stopTimeoutMs: 5_000,
      tls: false,
      tlsCa: undefined,
      labels: {},
      token: undefined,
      gcAssistBudget: 0.01,
      gcAssistMaxPauseMs: 50,
      precise: 'auto',
      preciseMaxMs: 1_800_000,
      preciseMinProfiles: 16,
      preciseCooldownMs: 1_800_000,
    });
  });

  it('precise mode: auto|always|never, its bound and cool-down in ms, its least length in profiles', () => {
    expect(resolveConfig({}, { HEAPWATCH_PRECISE: 'never', HEAPWATCH_PRECISE_MAX_MS: '600000', HEAPWATCH_PRECISE_MIN_PROFILES: '0', HEAPWATCH_PRECISE_COOLDOWN_MS: '0' })).toMatchObject({
      ok: true,
      config: { precise: 'never', preciseMaxMs: 600_000, preciseMinProfiles: 0, preciseCooldownMs: 0 },
    });
    expect(resolveConfig({ preciseMinProfiles: 1001 }, {})).toMatchObject({ ok: false });
    expect(resolveConfig({ precise: 'always' }, { HEAPWATCH_PRECISE: 'never' })).toMatchObject({ ok: true, config: { precise: 'always' } });
    const bad = resolveConfig({}, { HEAPWATCH_PRECISE: 'sometimes', HEAPWATCH_PRECISE_MAX_MS: '10' });
    expect(bad).toMatchObject({ ok: true, config: { precise: 'auto', preciseMaxMs: 1_800_000 } });
    expect(bad.warnings).toHaveLength(2);
    expect(bad.warnings[0]).toMatch(/HEAPWATCH_PRECISE="sometimes".*auto\|always\|never/);
    expect(resolveConfig({ precise: true as unknown as 'auto' }, {})).toMatchObject({ ok: false });
    expect(resolveConfig({ preciseMaxMs: 999 }, {})).toMatchObject({ ok: false });
  });

  it('GcAssist budget: a fraction up to 0.2 from env or option; anything else is refused', () => {
    expect(resolveConfig({}, { HEAPWATCH_GC_ASSIST_BUDGET: '0.05', HEAPWATCH_GC_ASSIST_MAX_PAUSE_MS: '20' })).toMatchObject({
      ok: true,
      config: { gcAssistBudget: 0.05, gcAssistMaxPauseMs: 20 },
    });
    expect(resolveConfig({}, { HEAPWATCH_GC_ASSIST_BUDGET: '0' })).toMatchObject({ ok: true, config: { gcAssistBudget: 0 } });
    for (const bad of ['1', '0.5', '-0.1', '1%', 'NaN']) {
      const r = resolveConfig({}, { HEAPWATCH_GC_ASSIST_BUDGET: bad });
      expect(r).toMatchObject({ ok: true, config: { gcAssistBudget: 0.01 } });
      expect(r.warnings[0]).toMatch(/^ignoring HEAPWATCH_GC_ASSIST_BUDGET=.*must be a number in \[0, 0.2\]/);
    }
    expect(resolveConfig({ gcAssistBudget: 0.3 }, {})).toMatchObject({ ok: false });
    expect(resolveConfig({ gcAssistMaxPauseMs: 0 }, {})).toMatchObject({ ok: false });
  });

  it('env overrides defaults and options override env', () => {
    const env = {
      HEAPWATCH_COLLECTOR: 'collector.internal:9000',
      HEAPWATCH_INTERVAL_MS: '1000',
      HEAPWATCH_LABELS: 'env=prod, region = eu-west-1',
      HEAPWATCH_TOKEN: 'from-env',
      HEAPWATCH_DISABLE_INLINING: 'false',
      HEAPWATCH_SERVICE: 'env-service',
    };
    const fromEnv = resolveConfig({}, env);
    expect(fromEnv.ok && fromEnv.config).toMatchObject({
      collector: 'collector.internal:9000',
      intervalMs: 1000,
      labels: { env: 'prod', region: 'eu-west-1' },
      token: 'from-env',
      disableInlining: false,
      service: 'env-service',
    });
    const both = resolveConfig({ intervalMs: 250, labels: { a: 'b' }, service: 'opt' }, env);
    expect(both.ok && both.config).toMatchObject({ intervalMs: 250, labels: { a: 'b' }, service: 'opt', token: 'from-env' });
  });

  it('service defaults to OTEL_SERVICE_NAME, then the main script name', () => {
    const otel = resolveConfig({}, { OTEL_SERVICE_NAME: 'otel-name' });
    expect(otel.ok && otel.config.service).toBe('otel-name');
    const script = resolveConfig({}, {});
    const expected = require('node:path').basename(process.argv[1]!, require('node:path').extname(process.argv[1]!));
    expect(script.ok && script.config.service).toBe(expected);
  });

  it.each([
    ['HEAPWATCH_INTERVAL_MS', '100'], // below the 200 ms minimum
    ['HEAPWATCH_INTERVAL_MS', '5s'],
    ['HEAPWATCH_SAMPLING_INTERVAL_BYTES', '-1'],
    ['HEAPWATCH_COLLECTOR', 'no-port'],
    ['HEAPWATCH_COLLECTOR', 'http://x:1'],
    ['HEAPWATCH_LABELS', 'a=b,oops'],
    ['HEAPWATCH_LOG_LEVEL', 'loud'],
    ['HEAPWATCH_TLS', 'maybe'],
    ['HEAPWATCH_MAX_QUEUE_BYTES', '0'],
  ])('a bad env value %s=%s is a warning and falls back to the default', (name, value) => {
    const r = resolveConfig({}, { [name]: value });
    expect(r.ok).toBe(true);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(name);
    const defaults = resolveConfig({}, {});
    if (r.ok && defaults.ok) expect({ ...r.config, random: 0 }).toEqual({ ...defaults.config, random: 0 });
  });

  it.each([
    [{ intervalMs: 199 }],
    [{ intervalMs: 1.5 }],
    [{ collector: 'nope' }],
    [{ logLevel: 'verbose' }],
    [{ labels: { a: 1 } }],
    [{ tls: 'yes' }],
    [{ maxQueueProfiles: 0 }],
    [{ intervallMs: 1000 }], // typo: unknown option
  ])('a bad explicit option %j is an error', (opts) => {
    const r = resolveConfig(opts as never, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toHaveLength(1);
  });

  it('accepts IPv6 collector addresses', () => {
    const r = resolveConfig({ collector: '[::1]:7801' }, {});
    expect(r.ok && r.config.collector).toBe('[::1]:7801');
  });

  it('HEAPWATCH_ENABLED', () => {
    expect(enabledFromEnv({})).toEqual({ enabled: true });
    expect(enabledFromEnv({ HEAPWATCH_ENABLED: 'false' })).toEqual({ enabled: false });
    expect(enabledFromEnv({ HEAPWATCH_ENABLED: '0' })).toEqual({ enabled: false });
    const bad = enabledFromEnv({ HEAPWATCH_ENABLED: 'nah' });
    expect(bad.enabled).toBe(true);
    expect(bad.warning).toContain('HEAPWATCH_ENABLED');
  });
});
