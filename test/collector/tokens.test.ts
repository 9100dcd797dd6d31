import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../collector/src/auth/throttle';
import { bearer, parseTokensFile, TokenError, Tokens } from '../../collector/src/auth/tokens';

describe('tokens', () => {
  it('parses a tokens file: scopes, optional tenant, comments and blank lines', () => {
    const specs = parseTokensFile('# comment\n\naaaa write team-a\nbbbb read,write\r\n  cccc read  team-b  \n');
    expect(specs).toEqual([
      { token: 'aaaa', scopes: ['write'], tenant: 'team-a' },
      { token: 'bbbb', scopes: ['read', 'write'], tenant: '' },
      { token: 'cccc', scopes: ['read'], tenant: 'team-b' },
    ]);
  });

  it('says which line is wrong', () => {
    expect(() => parseTokensFile('aaaa read\nbbbb admin', 'tokens')).toThrow(/tokens:2: unknown scope "admin"/);
    expect(() => parseTokensFile('aaaa', 'tokens')).toThrow(/tokens:1: expected "TOKEN SCOPE/);
    expect(() => parseTokensFile('aaaa read ../etc', 'tokens')).toThrow(/tokens:1: tenant "..\/etc" must match/);
    expect(() => parseTokensFile('aaaa read t extra', 'tokens')).toThrow(TokenError);
    expect(() => new Tokens(parseTokensFile('aaaa read\naaaa write'))).toThrow(/configured twice/);
  });

  it('finds the principal of a token, and nothing for a wrong, missing, longer or shorter one', () => {
    const t = new Tokens(parseTokensFile('secret-one write team-a\nsecret-two read'));
    expect(t.check('secret-one')).toEqual({ scopes: new Set(['write']), tenant: 'team-a' });
    expect(t.check('secret-two')?.tenant).toBe('');
    for (const wrong of [undefined, '', 'secret-on', 'secret-one2', 'SECRET-ONE']) expect(t.check(wrong)).toBeNull();
  });

  it('lets everything through as the default tenant when no token is configured', () => {
    expect(new Tokens([]).check(undefined)).toEqual({ scopes: new Set(['read', 'write']), tenant: '' });
  });

  it('reads a Bearer header', () => {
    expect(bearer('Bearer abc')).toBe('abc');
    expect(bearer('bearer  abc ')).toBe('abc');
    expect(bearer('Basic abc')).toBeUndefined();
    expect(bearer(undefined)).toBeUndefined();
  });
});

describe('AuthThrottle', () => {
  it('blocks an address after maxFailures within the window, until the window has passed', () => {
    let now = 0;
    const t = new AuthThrottle({ maxFailures: 3, windowMs: 1000, now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(t.blockedFor('a')).toBe(0);
      t.failed('a');
    }
    now = 400;
    expect(t.blockedFor('a')).toBe(600);
    expect(t.blockedFor('b')).toBe(0);
    now = 1000;
    expect(t.blockedFor('a')).toBe(0);
    expect(t.counters).toMatchObject({ failures: 3, blocked: 1 });
  });

  it('tracks at most maxAddresses, forgetting the oldest and counting it', () => {
    const t = new AuthThrottle({ maxAddresses: 2 });
    t.failed('a');
    t.failed('b');
    t.failed('c');
    expect(t.size).toBe(2);
    expect(t.counters.evicted).toBe(1);
  });
});
