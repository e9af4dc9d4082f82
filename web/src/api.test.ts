import { describe, expect, it } from 'vitest';
import { csrfToken, parseWatchLines, resourcePath, withQuery } from './api';

describe('csrfToken', () => {
  it.each([
    { cookies: 'core_csrf=abc', want: 'abc' },
    { cookies: 'a=1; core_csrf=x=y; b=2', want: 'x=y' },
    { cookies: 'a=1', want: '' },
    { cookies: '', want: '' },
  ])('$cookies', ({ cookies, want }) => expect(csrfToken(cookies)).toBe(want));
});

describe('parseWatchLines', () => {
  it('returns complete events and keeps the unfinished line', () => {
    const got = parseWatchLines<{ n: number }>('{"type":"ADDED","object":{"n":1}}\n\n{"type":"DELETED","object":{"n":2}}\n{"type":"MOD');
    expect(got.events).toEqual([
      { type: 'ADDED', object: { n: 1 } },
      { type: 'DELETED', object: { n: 2 } },
    ]);
    expect(got.rest).toBe('{"type":"MOD');
  });
});

describe('paths', () => {
  it.each([
    { ns: 'team-a', name: 'p1', want: '/k8s/apis/core.calyptia.com/v1/namespaces/team-a/pipelines/p1' },
    { ns: '', name: undefined, want: '/k8s/apis/core.calyptia.com/v1/pipelines' },
  ])('$want', ({ ns, name, want }) => expect(resourcePath('pipelines', ns, name)).toBe(want));
  it('adds query parameters, skipping empty ones', () => {
    expect(withQuery('/x', { a: 1, b: '', c: undefined, d: 'y z' })).toBe('/x?a=1&d=y+z');
    expect(withQuery('/x?w=1', { a: 2 })).toBe('/x?w=1&a=2');
  });
});
