// Compiles src/*.sol with the pinned solc-js into artifacts/<Name>.json (ABI, bytecode, compiler
// version and settings). `node compile.mjs --check` compiles into memory instead and exits 1 if
// the committed artifacts differ, so that `make test` catches sources edited without a rebuild.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import solc from 'solc';

const root = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const check = process.argv.includes('--check');

// Contracts that get an artifact (libraries used only internally are compiled in, not shipped).
const CONTRACTS = ['GridplaySettlement', 'ReportBatch'];

// Fixed settings: the same sources give the same bytes on any machine.
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none', appendCBOR: false },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

const sources = {};
for (const file of readdirSync(join(root, 'src')).filter((f) => f.endsWith('.sol')).sort()) {
  sources[`src/${file}`] = { content: readFileSync(join(root, 'src', file), 'utf8') };
}

function findImports(path) {
  try {
    return { contents: readFileSync(require.resolve(path), 'utf8') };
  } catch {
    return { error: `not found: ${path}` };
  }
}

const output = JSON.parse(
  solc.compile(JSON.stringify({ language: 'Solidity', sources, settings }), { import: findImports }),
);
const problems = (output.errors ?? []).filter(
  (e) => e.severity === 'error' || (e.sourceLocation?.file ?? '').startsWith('src/'),
);
for (const e of output.errors ?? []) console.error(e.formattedMessage);
if (problems.length > 0) {
  console.error(`compile.mjs: ${problems.length} error(s) or warning(s) in our sources`);
  process.exit(1);
}

const openzeppelin = JSON.parse(
  readFileSync(require.resolve('@openzeppelin/contracts/package.json'), 'utf8'),
).version;
const { outputSelection: _, ...recordedSettings } = settings;
let stale = 0;
for (const name of CONTRACTS) {
  const sourceName = `src/${name}.sol`;
  const c = output.contracts[sourceName]?.[name];
  if (!c) throw new Error(`no contract ${name} in ${sourceName}`);
  const artifact = {
    contractName: name,
    sourceName,
    compiler: { version: solc.version(), openzeppelin, settings: recordedSettings },
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
  };
  const text = `${JSON.stringify(artifact, null, 2)}\n`;
  const path = join(root, 'artifacts', `${name}.json`);
  if (check) {
    const committed = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (committed !== text) {
      console.error(`compile.mjs: ${path} is stale: run \`node compile.mjs\` in chain/contracts and commit it`);
      stale += 1;
    }
  } else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote artifacts/${name}.json (${(c.evm.deployedBytecode.object.length / 2) | 0} bytes deployed)`);
  }
}
if (check) {
  if (stale > 0) process.exit(1);
  console.log(`compile.mjs: ${CONTRACTS.length} artifact(s) match solc ${solc.version()}`);
}
