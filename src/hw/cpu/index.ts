// The x86-64 CPU engine's public surface.
export { CodeCache } from './code-cache.js';
export {
  Cpu,
  type CpuPlatform,
  INTERCEPT_RDTSC,
  INTERCEPT_RDTSCP,
  MINIMAL_PLATFORM,
  type RmpOutcome,
  X86Fault,
} from './cpu.js';
export { decode, decodeOne, DECODE_MORE, DECODE_TOO_LONG, DECODE_UD } from './decoder.js';
export { disassemble, type DisasmLine, formatInsn, regName } from './disasm.js';
export { Insn } from './insn.js';
export { Interpreter, STOP_BUDGET, STOP_EXCEPTION, STOP_EXIT, STOP_HLT } from './interpreter.js';
export {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  FlatTranslator,
  PERM_R,
  PERM_W,
  PERM_X,
  type TranslateResult,
  type Translator,
} from './translator.js';
export {
  type FlagsSource,
  PagingTranslator,
  VC_NOT_VALIDATED,
  VEC_NPF,
} from './paging-translator.js';
