/**
 * What a command has to say when SIGTERM or SIGINT ends the trainer (cli.ts): a command running
 * adds a note, which cli.ts's handler prints before its own line and the exit. Kept apart from
 * cli.ts so that a command never touches the process's signal handlers itself (in a test, the
 * commands run inside the test's process).
 */
/** `err`: the line for stderr; `out`: a line for stdout too (train-all --json: its last JSON line). */
type StopNote = (signal: string) => { err: string; out?: string };

const notes = new Set<StopNote>();

/** Adds a note printed if a signal stops the process; returns what removes it. */
export function addStopNote(note: StopNote): () => void {
  notes.add(note);
  return () => notes.delete(note);
}

/** The lines of the notes in force, for `signal`. */
export function stopNoteLines(signal: string): Array<{ err: string; out?: string }> {
  return [...notes].map((note) => note(signal));
}
