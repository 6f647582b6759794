import { createRequire } from 'node:module';

import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
	resolve: {
		// Load n8n-workflow's CommonJS build, the one n8n itself gives the compiled nodes at
		// run time (its ESM build has no "type": "module" and would be re-transformed).
		alias: { 'n8n-workflow': require.resolve('n8n-workflow') },
	},
	test: {
		include: ['test/**/*.test.ts'],
		environment: 'node',
		testTimeout: 15_000,
		watch: false,
	},
});
