#!/usr/bin/env node
// Checks an unpacked `npm pack` tarball of this package the way n8n's verification does,
// as far as that is possible offline. Usage: node scripts/lint-packed.mjs <unpacked dir>
//
// The real scanner (@n8n/scan-community-package) needs npm provenance and network access.
// It lints two things, and so does this script, with the same ESLint configuration
// (the scanner's `buildScanConfig`, rebuilt here from the plugins @n8n/node-cli installs):
//   1. the source files: package.json and {nodes,credentials}/**/*.{js,ts,json};
//   2. the tarball: **/*.js and package.json.
// On top of that it checks what the tarball contains, the package.json rules, and that
// n8n could load every node and credential listed in package.json from the tarball.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ESLint } from 'eslint';
import { defineConfig } from 'eslint/config';

const here = path.dirname(fileURLToPath(import.meta.url));
const projectDir = path.resolve(here, '..');
const packedDir = path.resolve(process.argv[2] ?? '');
const require = createRequire(path.join(projectDir, 'package.json'));

const problems = [];
const fail = (message) => problems.push(message);
const ok = (message) => console.log(`  ok  ${message}`);

if (!process.argv[2] || !existsSync(path.join(packedDir, 'package.json'))) {
	console.error('usage: node scripts/lint-packed.mjs <directory of the unpacked tarball>');
	process.exit(2);
}

function listFiles(dir, base = dir) {
	return readdirSync(dir).flatMap((name) => {
		const full = path.join(dir, name);
		return statSync(full).isDirectory() ? listFiles(full, base) : [path.relative(base, full)];
	});
}

// ---------------------------------------------------------------------------
// 1. Contents of the tarball
// ---------------------------------------------------------------------------
console.log(`Checking the tarball contents (${packedDir})`);
const files = listFiles(packedDir).sort();
const allowedTopLevel = /^(package\.json|README(\.md)?|LICEN[SC]E(\.md)?|CHANGELOG(\.md)?)$/i;
for (const file of files) {
	if (!file.startsWith(`dist${path.sep}`) && !allowedTopLevel.test(file)) {
		fail(`unexpected file in the tarball: ${file}`);
	}
	if (file.endsWith('.ts') && !file.endsWith('.d.ts')) fail(`TypeScript source in the tarball: ${file}`);
	if (/(^|[\\/])test[\\/]|\.test\.[jt]s$/.test(file)) fail(`test file in the tarball: ${file}`);
}
ok(`${files.length} files, all under dist/ or package metadata`);

// ---------------------------------------------------------------------------
// 2. package.json rules
// ---------------------------------------------------------------------------
console.log('Checking package.json');
const pkg = JSON.parse(readFileSync(path.join(packedDir, 'package.json'), 'utf8'));
if (!/^n8n-nodes-|^@[^/]+\/n8n-nodes-/.test(pkg.name)) fail(`package name ${pkg.name} must start with n8n-nodes-`);
if (!pkg.keywords?.includes('n8n-community-node-package')) fail('keyword n8n-community-node-package missing');
if (pkg.license !== 'MIT') fail(`licence is ${pkg.license}, expected MIT`);
if (pkg.dependencies && Object.keys(pkg.dependencies).length > 0) {
	fail(`runtime dependencies are not allowed: ${Object.keys(pkg.dependencies).join(', ')}`);
}
if (JSON.stringify(pkg.peerDependencies) !== JSON.stringify({ 'n8n-workflow': '*' })) {
	fail(`peerDependencies must be exactly {"n8n-workflow": "*"}, got ${JSON.stringify(pkg.peerDependencies)}`);
}
for (const script of ['prepare', 'preinstall', 'install', 'postinstall', 'prepublish']) {
	if (pkg.scripts?.[script]) fail(`lifecycle script "${script}" is not allowed`);
}
if (pkg.overrides) fail('"overrides" is not allowed');
if (JSON.stringify(pkg.files) !== JSON.stringify(['dist'])) fail(`files must be ["dist"], got ${JSON.stringify(pkg.files)}`);
if (pkg.n8n?.n8nNodesApiVersion !== 1) fail('n8n.n8nNodesApiVersion must be 1');
if (pkg.n8n?.strict !== true) fail('n8n.strict must be true');
if (!pkg.author?.name || !pkg.author?.email) fail('author needs a name and an email');
if (!pkg.repository?.url) fail('repository url missing');
if (!pkg.description) fail('description missing');
ok('metadata, dependencies, scripts');

// ---------------------------------------------------------------------------
// 3. n8n can load every node and credential from the tarball
// ---------------------------------------------------------------------------
console.log('Loading the nodes and credentials like n8n does');
function checkIcon(icon, fromFile, label) {
	const icons = typeof icon === 'string' ? { icon } : (icon ?? {});
	if (Object.keys(icons).length === 0) fail(`${label}: no icon`);
	for (const [variant, value] of Object.entries(icons)) {
		if (typeof value !== 'string' || !value.startsWith('file:')) {
			fail(`${label}: icon ${variant} must be a file: path`);
			continue;
		}
		const iconPath = path.resolve(path.dirname(fromFile), value.slice('file:'.length));
		if (!existsSync(iconPath)) fail(`${label}: icon ${variant} not in the tarball (${value})`);
	}
}

const loadFrom = createRequire(path.join(packedDir, 'package.json'));
// n8n provides n8n-workflow to community packages; take ours for the check.
const Module = require('node:module');
const workflowPath = require.resolve('n8n-workflow');
const originalResolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
	if (request === 'n8n-workflow') return workflowPath;
	return originalResolve.call(this, request, ...rest);
};

for (const kind of ['credentials', 'nodes']) {
	for (const entry of pkg.n8n?.[kind] ?? []) {
		const file = path.join(packedDir, entry);
		if (!existsSync(file)) {
			fail(`${entry} is listed in package.json but not in the tarball`);
			continue;
		}
		const className = path.basename(entry).split('.')[0];
		const exported = loadFrom(file)[className];
		if (typeof exported !== 'function') {
			fail(`${entry} does not export class ${className}`);
			continue;
		}
		const instance = new exported();
		if (kind === 'nodes') {
			const description = instance.description;
			checkIcon(description.icon, file, entry);
			const codex = file.replace(/\.js$/, '.json');
			if (!existsSync(codex)) fail(`${entry}: codex file ${path.basename(codex)} missing`);
			if (description.group.includes('trigger')) {
				if (!description.name.endsWith('Trigger')) fail(`${entry}: trigger name must end with Trigger`);
				if (description.inputs.length !== 0) fail(`${entry}: trigger inputs must be []`);
				if (typeof instance.trigger !== 'function') fail(`${entry}: no trigger()`);
			} else if (description.usableAsTool !== true) {
				fail(`${entry}: usableAsTool missing`);
			}
			ok(`${entry}: ${description.displayName} (${description.name})`);
		} else {
			checkIcon(instance.icon, file, entry);
			if (!instance.test?.request) fail(`${entry}: no credential test request`);
			if (typeof instance.authenticate !== 'function') fail(`${entry}: authenticate must be a function`);
			ok(`${entry}: ${instance.displayName} (${instance.name})`);
		}
	}
}
Module._resolveFilename = originalResolve;

// ---------------------------------------------------------------------------
// 4. ESLint with the scanner's configuration
// ---------------------------------------------------------------------------
async function buildScanConfig() {
	const { n8nCommunityNodesPlugin } = await import('@n8n/eslint-plugin-community-nodes');
	const tsParserModule = await import('@typescript-eslint/parser');
	const n8nNodesPlugin = (await import('eslint-plugin-n8n-nodes-base')).default;
	const parser = tsParserModule.default ?? tsParserModule;
	return defineConfig(
		n8nCommunityNodesPlugin.configs.recommended,
		{ rules: { 'no-console': 'error' } },
		{ plugins: { 'n8n-nodes-base': n8nNodesPlugin } },
		{ files: ['package.json'], rules: { ...n8nNodesPlugin.configs.community.rules } },
		{
			files: ['**/credentials/**/*.ts'],
			rules: {
				...n8nNodesPlugin.configs.credentials.rules,
				'n8n-nodes-base/cred-class-field-documentation-url-miscased': 'off',
				'n8n-nodes-base/cred-class-field-type-options-password-missing': 'off',
			},
		},
		{
			files: ['**/nodes/**/*.ts'],
			rules: {
				...n8nNodesPlugin.configs.nodes.rules,
				'n8n-nodes-base/node-class-description-inputs-wrong-regular-node': 'off',
				'n8n-nodes-base/node-class-description-outputs-wrong': 'off',
				'n8n-nodes-base/node-param-type-options-max-value-present': 'off',
			},
		},
		{ files: ['**/*.json'], languageOptions: { parser } },
		{ files: ['**/*.ts'], languageOptions: { parser } },
	);
}

async function lint(dir, patterns, label) {
	const eslint = new ESLint({
		cwd: dir,
		allowInlineConfig: false,
		overrideConfigFile: true,
		overrideConfig: await buildScanConfig(),
		errorOnUnmatchedPattern: false,
	});
	const results = await eslint.lintFiles(patterns);
	const linted = results.length;
	const withErrors = results.filter((result) => result.errorCount > 0);
	const formatter = await eslint.loadFormatter('stylish');
	const output = await formatter.format(results);
	if (output.trim() !== '') console.log(output);
	if (linted === 0) fail(`${label}: no file matched ${patterns.join(', ')}`);
	if (withErrors.length > 0) fail(`${label}: ESLint errors in ${withErrors.length} file(s)`);
	else ok(`${label}: ${linted} files, no ESLint error`);
}

console.log('ESLint, scanner configuration, on the tarball (**/*.js, package.json)');
await lint(packedDir, ['**/*.js', 'package.json'], 'tarball');
console.log('ESLint, scanner configuration, on the source (package.json, {nodes,credentials}/**/*.{js,ts,json})');
await lint(projectDir, ['package.json', '{nodes,credentials}/**/*.{js,ts,json}'], 'source');

if (problems.length > 0) {
	console.error(`\nlint-packed: ${problems.length} problem(s):`);
	for (const problem of problems) console.error(`  - ${problem}`);
	process.exit(1);
}
console.log('\nlint-packed: the packed package passes');
