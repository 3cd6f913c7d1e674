// The public surface of src/arch: every spec byte layout and constant, defined once.
export * from './struct.js';
export * from './bits.js';
export * from './report.js';
