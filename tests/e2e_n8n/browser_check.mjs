// Browser check of the n8n editor with the Friday nodes installed.
//
// Debian's Chromium (/usr/bin/chromium) driven by playwright-core from the cache
// (scripts/n8n/install-browser.sh); never a downloaded browser. Run with Node >= 20:
//
//   FRIDAY_PLAYWRIGHT_NODE_PATH=~/.cache/friday/playwright-core-<v>/node_modules \
//   node tests/e2e_n8n/browser_check.mjs --url http://127.0.0.1:5678 \
//     --email owner@friday.test --password ... --workflow <id> --trigger-node "Email received" \
//     --screenshot docs/images/friday-workflow.png [--artifacts <dir>] \
//     [--sidecar-url http://127.0.0.1:8000 --sidecar-key KEY [--listen-stream email.received]]
//
// Steps: sign in as the owner through the sign-in form; open the workflow and screenshot it
// on the canvas; search "Friday" in the node panel (names and icons); open the Friday
// Trigger and list its Stream dropdown (loaded from the sidecar by the node's loadOptions);
// with --sidecar-url/--sidecar-key, click "Execute step" on the trigger and publish events to
// the sidecar until the output panel shows one (the trigger's manual "test event" mode).
// Prints one JSON report on stdout (the pytest test asserts on it); exit code 0 when the
// script ran to the end, 1 when a step threw (the report then has "error" and "step").

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
	args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const required = ['url', 'email', 'password', 'workflow', 'trigger-node', 'screenshot'];
for (const name of required) {
	if (!args[name]) {
		console.error(`missing --${name}`);
		process.exit(2);
	}
}

const modulesDir = process.env.FRIDAY_PLAYWRIGHT_NODE_PATH;
if (!modulesDir || !fs.existsSync(path.join(modulesDir, 'playwright-core'))) {
	console.error(
		'FRIDAY_PLAYWRIGHT_NODE_PATH must point at the node_modules holding playwright-core (scripts/n8n/install-browser.sh)',
	);
	process.exit(2);
}
const require = createRequire(path.join(modulesDir, 'noop.js'));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.FRIDAY_CHROMIUM || '/usr/bin/chromium';
// Playwright adds --headless (headless: true) and --user-data-dir (the persistent profile).
const FLAGS = [
	'--no-sandbox',
	'--disable-gpu',
	'--disable-quic',
	'--no-first-run',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync',
];
const artifacts = args.artifacts || fs.mkdtempSync(path.join(os.tmpdir(), 'friday-browser-'));
fs.mkdirSync(artifacts, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'friday-chromium-profile-'));
const base = args.url.replace(/\/$/, '');
const report = { chromium: CHROMIUM, flags: FLAGS, steps: [], consoleErrors: [], failedRequests: [] };
let step = 'launch';

function done(code) {
	fs.rmSync(profile, { recursive: true, force: true });
	process.stdout.write(JSON.stringify(report, null, 2) + '\n');
	process.exit(code);
}

async function iconInfo(locator) {
	const img = locator.locator('img').first();
	if ((await img.count()) === 0) return { src: null, loaded: false };
	return await img.evaluate((el) => ({
		src: el.getAttribute('src'),
		loaded: el.complete && el.naturalWidth > 0,
	}));
}

let context;
try {
	context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: true,
		args: FLAGS,
		viewport: { width: 1400, height: 800 },
		deviceScaleFactor: 1,
	});
	report.browserVersion = context.browser()?.version() ?? null;
	// The flags Chromium really runs with (Playwright adds --headless and --user-data-dir).
	const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n');
	const main = processes.find((line) => line.includes(`--user-data-dir=${profile}`) && !line.includes('--type='));
	report.commandLine = main ? main.split(/\s+/).filter((arg) => arg.startsWith('--')) : null;
	report.profileWasFresh = profile;
	const page = context.pages()[0] ?? (await context.newPage());
	page.setDefaultTimeout(30000);
	page.on('console', (msg) => {
		if (msg.type() === 'error') report.consoleErrors.push(msg.text().slice(0, 300));
	});
	page.on('response', (resp) => {
		if (resp.status() >= 400 && !resp.url().includes('/rest/login')) {
			report.failedRequests.push(`${resp.status()} ${resp.url()}`);
		}
	});

	// 1. Sign in as the owner through the form.
	step = 'signin';
	await page.goto(`${base}/signin`);
	await page.locator('#emailOrLdapLoginId').fill(args.email);
	await page.locator('#password').fill(args.password);
	await page.locator('[data-test-id="form-submit-button"]').click();
	await page.waitForURL((u) => !u.pathname.startsWith('/signin'), { timeout: 30000 });
	report.afterSignin = new URL(page.url()).pathname;
	report.steps.push(step);

	// 2. The workflow on the canvas, with the Friday nodes' icons.
	step = 'canvas';
	await page.goto(`${base}/workflow/${args.workflow}`);
	const nodes = page.locator('[data-test-id="canvas-node"]');
	await nodes.first().waitFor();
	await page.waitForLoadState('networkidle').catch(() => {});
	report.canvasNodes = [];
	for (const node of await nodes.all()) {
		report.canvasNodes.push({
			name: await node.getAttribute('data-node-name'),
			type: await node.getAttribute('data-node-type'),
			icon: await iconInfo(node),
		});
	}
	await page.locator('[data-test-id="zoom-to-fit"]').click();
	await page.waitForTimeout(800); // zoom animation
	fs.mkdirSync(path.dirname(path.resolve(args.screenshot)), { recursive: true });
	await page.screenshot({ path: args.screenshot });
	report.screenshot = path.resolve(args.screenshot);
	report.steps.push(step);

	// 3. Node panel: search "Friday".
	step = 'node-panel';
	await page.locator('[data-test-id="node-creator-plus-button"]').click();
	const search = page.locator('[data-test-id="node-creator-search-bar"]');
	await search.waitFor();
	await search.fill('Friday');
	const items = page.locator('[data-test-id="node-creator"] [data-test-id="item-iterator-item"]');
	await items.first().waitFor();
	await page.waitForTimeout(500); // search results settle
	report.nodePanel = [];
	for (const item of await items.all()) {
		const name = item.locator('[data-test-id="node-creator-item-name"]');
		report.nodePanel.push({
			name: (await name.count()) ? (await name.first().innerText()).trim() : (await item.innerText()).trim(),
			navId: await item.getAttribute('data-keyboard-nav-id'),
			icon: await iconInfo(item),
		});
	}
	await page.screenshot({ path: path.join(artifacts, 'node-panel.png') });
	// The Friday node's actions (n8n groups the action node and its trigger as "Friday").
	const friday = items.filter({ has: page.locator('[data-test-id="node-creator-item-name"]', { hasText: /^Friday$/ }) });
	if ((await friday.count()) > 0) {
		await friday.first().click();
		const actions = page.locator(
			'[data-test-id="node-creator"] [data-keyboard-nav-type="action"] [data-test-id="node-creator-item-name"]',
		);
		await actions.first().waitFor();
		await page.waitForTimeout(300);
		report.nodePanelActions = (await actions.allInnerTexts()).map((text) => text.trim());
		// The trigger is listed under a collapsed "Triggers (n)" category: open it.
		const triggers = page.locator(
			'[data-test-id="node-creator"] [data-test-id="node-creator-category-item"][data-keyboard-nav-id="Triggers"]',
		);
		if ((await triggers.count()) > 0) {
			report.nodePanelTriggerCategory = (await triggers.first().innerText()).trim();
			await triggers.first().click();
			await page.waitForTimeout(500);
			const all = (await actions.allInnerTexts()).map((text) => text.trim());
			report.nodePanelTriggers = all.filter((name) => !report.nodePanelActions.includes(name));
		}
		await page.screenshot({ path: path.join(artifacts, 'node-panel-actions.png') });
		fs.writeFileSync(path.join(artifacts, 'node-panel-actions.html'), await page.content());
	}
	await page.keyboard.press('Escape');
	await page.keyboard.press('Escape');
	report.steps.push(step);

	// 4. The Friday Trigger's Stream dropdown, filled from the sidecar.
	step = 'trigger-streams';
	const trigger = page.locator(`[data-test-id="canvas-node"][data-node-name="${args['trigger-node']}"]`);
	await trigger.dblclick();
	const ndv = page.locator('[data-test-id="ndv"]');
	await ndv.waitFor();
	const streamParam = ndv.locator('[data-test-id="parameter-input-stream"]');
	await streamParam.waitFor();
	await streamParam.locator('input[role="combobox"]').click();
	const options = page.locator('.el-select-dropdown__item:visible');
	await options.first().waitFor();
	await page.waitForTimeout(300);
	report.streamOptions = [];
	for (const option of await options.all()) {
		report.streamOptions.push((await option.innerText()).trim().split('\n')[0]);
	}
	await page.screenshot({ path: path.join(artifacts, 'trigger-streams.png') });
	fs.writeFileSync(path.join(artifacts, 'trigger-streams.html'), await page.content());
	report.steps.push(step);

	// 5. "Execute step" on the trigger (n8n's "listen for test event"): publish until it shows one.
	if (args['sidecar-url'] && args['sidecar-key']) {
		step = 'listen-test-event';
		await page.keyboard.press('Escape'); // close the dropdown
		await ndv.locator('[data-test-id="node-execute-button"]').first().click();
		const output = ndv.locator('[data-test-id="output-panel"]');
		report.listenPublished = [];
		const deadline = Date.now() + 60000;
		let shown = null;
		while (!shown && Date.now() < deadline) {
			const emailId = `ui-test-${report.listenPublished.length}`;
			const resp = await fetch(`${args['sidecar-url'].replace(/\/$/, '')}/api/v1/events/publish`, {
				method: 'POST',
				headers: { Authorization: `Bearer ${args['sidecar-key']}`, 'Content-Type': 'application/json' },
				body: JSON.stringify({ stream: args['listen-stream'] || 'email.received', payload: { email_id: emailId }, source: 'browser-check' }),
			});
			if (!resp.ok) throw new Error(`publish answered HTTP ${resp.status}: ${await resp.text()}`);
			report.listenPublished.push({ emailId, id: (await resp.json()).id });
			await page.waitForTimeout(1500);
			const text = await output.innerText();
			shown = report.listenPublished.find((p) => text.includes(p.emailId)) ?? null;
		}
		report.listenShown = shown;
		report.listenOutputText = (await output.innerText()).slice(0, 2000);
		await page.screenshot({ path: path.join(artifacts, 'listen-test-event.png') });
		fs.writeFileSync(path.join(artifacts, 'listen-test-event.html'), await page.content());
		report.steps.push(step);
	}
	report.ok = true;
	await context.close();
	done(0);
} catch (error) {
	report.ok = false;
	report.step = step;
	report.error = String(error?.stack || error).slice(0, 3000);
	try {
		const page = context?.pages()[0];
		if (page) {
			await page.screenshot({ path: path.join(artifacts, `failed-${step}.png`) });
			fs.writeFileSync(path.join(artifacts, `failed-${step}.html`), await page.content());
		}
	} catch {
		// best effort
	}
	try {
		await context?.close();
	} catch {
		// best effort
	}
	done(1);
}
