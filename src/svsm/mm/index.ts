// The public surface of src/svsm/mm: the SVSM's page and small-block allocators.
export * from './allocator-error.js';
export * from './page-metadata.js';
export * from './buddy-allocator.js';
export * from './slab-allocator.js';
