// Symbolizes the SVSM's panic backtraces: frames in the evaluated bundle appear as
// `<anonymous>:LINE:COL`; the bundle's source map turns them into `src/svsm/...ts:LINE:COL`.

import { SourceMap } from 'node:module';

/**
 * The engine evaluates the bundle as a Function body, which V8 numbers from two lines before it
 * ("function anonymous(\n) {\n").
 */
const FUNCTION_PROLOGUE_LINES = 2;

export function backtraceSymbolizer(mapJson: string): (line: string) => string {
  const map = new SourceMap(JSON.parse(mapJson) as ConstructorParameters<typeof SourceMap>[0]);
  return (text) =>
    text.replace(/<anonymous>:(\d+):(\d+)/g, (whole, l: string, c: string) => {
      const entry = map.findEntry(Number(l) - 1 - FUNCTION_PROLOGUE_LINES, Number(c) - 1);
      if (entry === undefined || !('originalSource' in entry) || entry.originalSource === undefined)
        return whole;
      const source = entry.originalSource.replace(/^(\.\.\/)+/, '');
      return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    });
}
