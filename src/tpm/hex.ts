// Hex helpers for keys and diagnostics.
export { bytesToHex, hexToBytes } from '../arch/index.js';
