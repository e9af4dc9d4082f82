import { describe as suite, expect, it } from 'vitest';
import { ApiError } from './api';
import { byLine, describe, problemsOf } from './problems';

suite('problemsOf', () => {
  it.each([
    {
      name: 'config error with a line',
      cause: { field: 'spec.config', message: 'Invalid value: line 3: input "dumy": unknown plugin (did you mean "dummy"?)' },
      want: { field: 'spec.config', line: 3, message: 'input "dumy": unknown plugin (did you mean "dummy"?)' },
    },
    {
      name: 'config error without a line',
      cause: { field: 'spec.config', message: 'Required value: a Fluent Bit config' },
      want: { field: 'spec.config', line: 0, message: 'Required value: a Fluent Bit config' },
    },
    {
      name: 'other field',
      cause: { field: 'spec.replicas', message: 'Invalid value: -1: must be greater than or equal to 0' },
      want: { field: 'spec.replicas', line: 0, message: '-1: must be greater than or equal to 0' },
    },
  ])('$name', ({ cause, want }) => {
    expect(problemsOf({ code: 422, details: { causes: [cause] } })).toEqual([want]);
  });

  it('falls back to the message without causes', () => {
    expect(problemsOf({ code: 422, message: 'bad' })).toEqual([{ field: '', message: 'bad', line: 0 }]);
  });
});

suite('byLine', () => {
  it('groups config problems by line and leaves the others out', () => {
    const got = byLine([
      { field: 'spec.config', line: 3, message: 'a' },
      { field: 'spec.config', line: 3, message: 'b' },
      { field: 'spec.config', line: 7, message: 'c' },
      { field: 'spec.config', line: 0, message: 'no line' },
      { field: 'spec.replicas', line: 2, message: 'other field' },
    ]);
    expect([...got.entries()]).toEqual([
      [3, ['a', 'b']],
      [7, ['c']],
    ]);
  });
});

suite('describe', () => {
  it.each([
    { name: '403 is not allowed', err: new ApiError(403, { message: 'pipelines is forbidden' }), kind: 'forbidden', text: 'Not allowed: your account may not edit pipelines.' },
    { name: '422 is invalid', err: new ApiError(422, { message: 'Pipeline "x" is invalid' }), kind: 'invalid', text: 'Pipeline "x" is invalid' },
    { name: '500 is an error', err: new ApiError(500, { message: 'boom' }), kind: 'error', text: 'boom' },
    { name: 'network', err: new TypeError('Failed to fetch'), kind: 'error', text: 'Failed to fetch' },
  ])('$name', ({ err, kind, text }) => {
    expect(describe(err, 'edit pipelines')).toEqual({ kind, text });
  });
});
