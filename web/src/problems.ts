import { ApiError, type Status } from './api';

// A problem the API found in what the user wrote, placed at its config line when it names one.
export interface Problem {
  field: string;
  message: string;
  // line is the config line (1-based) the message names, or 0.
  line: number;
}

const lineRE = /\bline (\d+)(?::|\b)/;

// problemsOf turns a 422's causes into problems. Config errors read
// "Invalid value: line 14: output \"s4\": unknown plugin"; the line goes to the editor and the
// message loses the "Invalid value:" prefix the field error adds.
export function problemsOf(status: Status): Problem[] {
  const causes = status.details?.causes ?? [];
  if (causes.length === 0) return [{ field: '', message: status.message ?? 'invalid', line: 0 }];
  return causes.map((c) => {
    let message = (c.message ?? '').replace(/^Invalid value:\s*/, '');
    const m = lineRE.exec(message);
    const line = m ? Number(m[1]) : 0;
    if (m && m.index === 0) message = message.slice(m[0].length).trim();
    return { field: c.field ?? '', message, line };
  });
}

// byLine groups config problems by line, for the editor's gutter.
export function byLine(problems: Problem[], field = 'spec.config'): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const p of problems) {
    if (p.field !== field || p.line <= 0) continue;
    out.set(p.line, [...(out.get(p.line) ?? []), p.message]);
  }
  return out;
}

// describe says what went wrong for a person: "not allowed" for RBAC refusals, not an error page.
export function describe(err: unknown, doing = 'do this'): { kind: 'forbidden' | 'invalid' | 'error'; text: string } {
  if (err instanceof ApiError) {
    if (err.forbidden) return { kind: 'forbidden', text: `Not allowed: your account may not ${doing}.` };
    if (err.code === 422) return { kind: 'invalid', text: err.status.message ?? 'invalid' };
    return { kind: 'error', text: err.status.message ?? err.message };
  }
  return { kind: 'error', text: err instanceof Error ? err.message : String(err) };
}
