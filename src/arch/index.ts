// The public surface of src/arch: every spec byte layout and constant, defined once.
export * from './struct.js';
export * from './bits.js';
export * from './x86.js';
export * from './vmsa.js';
export * from './ghcb.js';
export * from './rmp.js';
export * from './report.js';
export * from './guest-message.js';
export * from './secrets-page.js';
export * from './cpuid-page.js';
export * from './cc-blob.js';
export * from './certs.js';
export * from './svsm-abi.js';
export * from './vmpl0.js';
export * from './svsm-boot.js';
export * from './guest-cpu.js';
export * from './acpi.js';
