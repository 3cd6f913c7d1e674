// The layer rules of ARCHITECTURE.md ("Layers and import rules"), checked by `npm run layers`.
// The trust boundary between host and SVSM is an import boundary: a violation fails CI.
/** Which project folders each layer may import, besides itself. */
const allowed = {
  arch: [],
  hw: ['arch'],
  host: ['arch', 'hw', 'igvm'],
  svsm: ['arch'],
  guest: ['arch'],
  igvm: ['arch'],
  attest: ['arch'],
  tpm: ['arch'],
};

const layerRules = Object.entries(allowed).map(([layer, may]) => ({
  name: `layer-${layer}`,
  comment: `src/${layer} may import only ${may.length ? may.map((m) => 'src/' + m).join(', ') : 'nothing outside itself'} (ARCHITECTURE.md)`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: '^src/', pathNot: `^src/(${[layer, ...may].join('|')})/` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'arch-is-pure',
      comment: 'src/arch is data: it may use neither Node built-ins nor npm packages',
      severity: 'error',
      from: { path: '^src/arch/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'] },
    },
    {
      name: 'svsm-is-self-contained',
      comment:
        'src/svsm runs from measured guest memory: no Node built-ins; of npm, only the pure-JS @noble crypto that esbuild bundles into the measured image',
      severity: 'error',
      from: { path: '^src/svsm/', pathNot: '\\.test\\.ts$' },
      to: {
        dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'],
        pathNot: '^node_modules/@noble/(hashes|ciphers)/',
      },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
