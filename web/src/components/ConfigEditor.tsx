import { useRef } from 'preact/hooks';
import type { Problem } from '../problems';
import { byLine } from '../problems';

// ConfigEditor is a plain textarea with a line-number gutter; lines the API's dry run found
// problems at are marked in the gutter and behind the text, and listed below with buttons that
// put the cursor on the line.
export function ConfigEditor({
  id,
  value,
  onInput,
  problems,
  readOnly,
  checking,
}: {
  id: string;
  value: string;
  onInput: (v: string) => void;
  problems: Problem[];
  readOnly?: boolean;
  checking?: boolean;
}) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const marks = useRef<HTMLDivElement>(null);
  const lines = value.split('\n').length;
  const at = byLine(problems);
  const others = problems.filter((p) => !(p.field === 'spec.config' && p.line > 0 && p.line <= lines));
  const sync = () => {
    const top = area.current?.scrollTop ?? 0;
    if (gutter.current) gutter.current.scrollTop = top;
    if (marks.current) marks.current.style.transform = `translateY(${-top}px)`;
  };
  const goTo = (line: number) => {
    const el = area.current;
    if (!el) return;
    const before = value.split('\n').slice(0, line - 1).join('\n');
    const pos = line > 1 ? before.length + 1 : 0;
    el.focus();
    el.setSelectionRange(pos, pos);
    el.scrollTop = Math.max(0, (line - 3) * 20);
    sync();
  };
  const errorId = `${id}-problems`;
  return (
    <div class="editor-wrap">
      <div class={readOnly ? 'editor readonly' : 'editor'}>
        <div class="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => {
            const msgs = at.get(i + 1);
            return (
              <div key={i} class={msgs ? 'ln error' : 'ln'} data-line={i + 1} title={msgs?.join('\n')}>
                {i + 1}
              </div>
            );
          })}
        </div>
        <div class="text">
          <div class="marks" ref={marks} aria-hidden="true">
            {[...at.keys()]
              .filter((l) => l <= lines)
              .map((l) => (
                <div key={l} class="mark" style={{ top: `${(l - 1) * 20 + 8}px` }} />
              ))}
          </div>
          <textarea
            id={id}
            ref={area}
            value={value}
            readOnly={readOnly}
            spellcheck={false}
            autocomplete="off"
            wrap="off"
            aria-invalid={problems.length > 0}
            aria-describedby={errorId}
            onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
            onScroll={sync}
            onKeyDown={(e) => {
              // Tab indents; Escape then Tab leaves the editor (keyboard users must not be trapped).
              if (e.key === 'Tab' && !e.shiftKey && !readOnly && !(e.target as HTMLTextAreaElement).dataset.escape) {
                e.preventDefault();
                const el = e.target as HTMLTextAreaElement;
                const s = el.selectionStart;
                const next = value.slice(0, s) + '    ' + value.slice(el.selectionEnd);
                onInput(next);
                requestAnimationFrame(() => el.setSelectionRange(s + 4, s + 4));
              } else if (e.key === 'Escape') {
                (e.target as HTMLTextAreaElement).dataset.escape = '1';
              } else {
                delete (e.target as HTMLTextAreaElement).dataset.escape;
              }
            }}
          />
        </div>
      </div>
      <div id={errorId} class="problems" aria-live="polite">
        {checking && <p class="checking">Checking…</p>}
        {!checking && problems.length === 0 && !readOnly && <p class="valid">The API accepts this config.</p>}
        {problems.length > 0 && (
          <ul>
            {[...at.entries()]
              .filter(([l]) => l <= lines)
              .sort((a, b) => a[0] - b[0])
              .flatMap(([l, msgs]) =>
                msgs.map((m, i) => (
                  <li key={`${l}-${i}`} class="problem" data-line={l}>
                    <button type="button" class="link" onClick={() => goTo(l)}>
                      Line {l}
                    </button>{' '}
                    {m}
                  </li>
                )),
              )}
            {others.map((p, i) => (
              <li key={`o-${i}`} class="problem">
                {p.field && <code>{p.field}</code>} {p.line > 0 ? `line ${p.line}: ` : ''}
                {p.message}
              </li>
            ))}
          </ul>
        )}
      </div>
      <p class="hint">Tab indents; press Escape, then Tab, to leave the editor.</p>
    </div>
  );
}
