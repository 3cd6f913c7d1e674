// The public surface of src/igvm: IGVM launch images written and read through a typed model, and
// the SEV-SNP launch digest a file leads to.
export * from './model.js';
export { readIgvm, writeIgvm } from './igvm-file.js';
export { validateModel, platformName } from './validate.js';
export * from './page-info-chain.js';
export * from './measure.js';
export * from './launch-plan.js';
export * from './launch-plan-igvm.js';
export * from './svsm-image.js';
export * from './firmware-tables.js';
