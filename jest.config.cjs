// One root config, one jest project per package. ts-jest compiles TypeScript (and the ESM-only
// @noble packages) to CommonJS for jest's runtime; type-checking is `tsc -b`'s job, so ts-jest's
// diagnostics stay off and tests start quickly.
const fs = require('node:fs');
const path = require('node:path');

const packagesDir = path.join(__dirname, 'packages');
const packages = fs
  .readdirSync(packagesDir)
  .filter((name) => fs.existsSync(path.join(packagesDir, name, 'test')));

const transform = {
  '^.+\\.[cm]?[tj]s$': [
    'ts-jest',
    { diagnostics: false, tsconfig: { allowJs: true, module: 'commonjs', moduleResolution: 'node10', isolatedDeclarations: false, esModuleInterop: true } },
  ],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: packages.map((name) => ({
    displayName: name,
    rootDir: path.join(packagesDir, name),
    testEnvironment: 'node',
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    transform,
    transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/[^/]+/node_modules/)?@noble/)'],
    moduleNameMapper: {
      // Sources import siblings as './x.js' (NodeNext); jest resolves the .ts file.
      '^(\\.{1,2}/.*)\\.js$': '$1',
      // Tests run against sibling packages' sources, not their build output.
      '^@coffer/([a-z-]+)$': path.join(packagesDir, '$1', 'src', 'index.ts'),
    },
  })),
};
