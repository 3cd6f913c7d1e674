// The x86-64 CPU engine's public surface.
export { CodeCache } from './code-cache.js';
export {
  Cpu,
  type CpuPlatform,
  INTERCEPT_RDTSC,
  INTERCEPT_RDTSCP,
  MINIMAL_PLATFORM,
  MODE_64,
  MODE_PROT16,
  MODE_PROT32,
  MODE_REAL,
  SEG_CS,
  SEG_DS,
  SEG_ES,
  SEG_FS,
  SEG_GS,
  SEG_LDTR,
  SEG_SS,
  SEG_TR,
  TRAP_EXCEPTION,
  TRAP_NONE,
  type RmpOutcome,
  TRAP_SOFTWARE,
  X86Fault,
} from './cpu.js';
export {
  deliverEvent,
  EVENT_EXCEPTION,
  EVENT_EXTERNAL,
  EVENT_NMI,
  EVENT_SOFTWARE,
  NO_ERROR_CODE,
  pushesErrorCode,
  ShutdownError,
} from './events.js';
export { debugChanged, DR6_BS } from './debug.js';
export { Segment } from './segment.js';
export { rdmsr, readCr, VC_MSR, wrmsr, writeCr } from './system.js';
export { decode, decodeOne, DECODE_MORE, DECODE_TOO_LONG, DECODE_UD } from './decoder.js';
export { disassemble, type DisasmLine, formatInsn, regName } from './disasm.js';
export { InstructionTracer, type TraceOptions, vectorName } from './trace.js';
export { Insn } from './insn.js';
export { SimdState } from './simd-state.js';
export {
  Interpreter,
  STOP_BUDGET,
  STOP_EXCEPTION,
  STOP_EXIT,
  STOP_HLT,
  STOP_SHUTDOWN,
} from './interpreter.js';
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
