import { build } from 'esbuild';
const stubAjv = process.env.STUB_AJV === '1', stubLocales = process.env.STUB_LOC === '1';
const plugins = [{ name: 'stubs', setup(b) {
  if (stubAjv) b.onResolve({ filter: /validation\/ajv-provider\.js$/ }, (a) => ({ path: a.path, namespace: 'stub' }));
  if (stubLocales) b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (a) => a.importer.includes('zod/v4/classic') ? { path: 'loc', namespace: 'stub' } : undefined);
  b.onLoad({ filter: /.*/, namespace: 'stub' }, (a) => a.path === 'loc' ? { contents: `export { default as en } from ${JSON.stringify(process.cwd() + '/node_modules/zod/v4/locales/en.js')};`, loader: 'js', resolveDir: process.cwd() } : { contents: 'export class AjvJsonSchemaValidator { getValidator() { throw new Error("no ajv"); } }', loader: 'js' });
} }];
await build({ entryPoints: ['dist/src/cli.js'], outfile: 'dist/exp/cli.cjs', bundle: true, platform: 'node', format: 'cjs', target: 'node20', plugins,
  minifyWhitespace: process.env.MIN === '1', minifySyntax: process.env.MIN === '1', legalComments: 'none',
  external: ['better-sqlite3', '@mollie/api-client'], define: { 'import.meta.url': '__importMetaUrl' },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" }, logLevel: 'warning' });
