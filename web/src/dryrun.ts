import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';
import { problemsOf, type Problem } from './problems';

// useDryRun sends every edit, once typing pauses, to the API as a dry run and keeps the
// problems it answers (422) for the editor. check resolves when the API accepts the edit.
export function useDryRun(key: string, check: (() => Promise<unknown>) | null, delay = 500) {
  const [problems, setProblems] = useState<Problem[]>([]);
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const seq = useRef(0);
  useEffect(() => {
    if (!check) return;
    const n = ++seq.current;
    setChecking(true);
    const t = setTimeout(async () => {
      try {
        await check();
        if (n !== seq.current) return;
        setProblems([]);
        setError(null);
      } catch (err) {
        if (n !== seq.current) return;
        if (err instanceof ApiError && err.code === 422) {
          setProblems(problemsOf(err.status));
          setError(null);
        } else {
          setProblems([]);
          setError(err);
        }
      } finally {
        if (n === seq.current) setChecking(false);
      }
    }, delay);
    return () => clearTimeout(t);
  }, [key]);
  return { problems, checking, error, setProblems };
}
