import type { IHttpRequestOptions, ILoadOptionsFunctions } from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';
import { describe, expect, it } from 'vitest';
import { mockDeep } from 'vitest-mock-extended';

import { FridayApi } from '../credentials/FridayApi.credentials';
import { getGroups, getPublishTargets } from '../nodes/shared/loadOptions';
import { SseParser } from '../nodes/shared/sse';
import { sidecarApiError, transportError } from '../nodes/shared/transport';
import { BASE_URL, FakeSidecar, ok, sidecarError, testNode } from './helpers';

describe('Friday API credential', () => {
	const credential = new FridayApi();

	it('has a base URL (default http://localhost:8000) and a password API key', () => {
		expect(credential.name).toBe('fridayApi');
		const [baseUrl, apiKey] = credential.properties;
		expect(baseUrl).toMatchObject({ name: 'baseUrl', default: 'http://localhost:8000' });
		expect(apiKey).toMatchObject({
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
		});
	});

	it('tests the credential with GET /api/v1/streams on the base URL', () => {
		expect(credential.test.request).toEqual({
			baseURL: '={{$credentials.baseUrl}}',
			url: '/api/v1/streams',
			method: 'GET',
			headers: { Accept: 'application/json' },
		});
		expect(
			credential.test.rules?.map((rule) => (rule.properties as { value: number }).value),
		).toEqual([401, 403, 404]);
	});

	it('authenticates with a function that adds the bearer key (no expressions involved)', async () => {
		expect(typeof credential.authenticate).toBe('function');
		const request: IHttpRequestOptions = {
			url: `${BASE_URL}/api/v1/streams`,
			headers: { Accept: 'application/json' },
		};
		const authenticated = await credential.authenticate(
			{ baseUrl: BASE_URL, apiKey: ' secret ' },
			request,
		);
		expect(authenticated.headers).toEqual({
			Accept: 'application/json',
			Authorization: 'Bearer secret',
		});
		expect(request.headers).toEqual({ Accept: 'application/json' });
	});

	it('sends no Authorization header when no key is set', async () => {
		const request: IHttpRequestOptions = { url: `${BASE_URL}/api/v1/streams` };
		const authenticated = await credential.authenticate({ baseUrl: BASE_URL, apiKey: '' }, request);
		expect(authenticated.headers).toBeUndefined();
	});
});

describe('transport errors', () => {
	const node = testNode('Friday', 'n8n-nodes-friday.friday');

	it('keeps the sidecar message and details', () => {
		const error = sidecarApiError(
			node,
			400,
			{
				error: {
					code: 'invalid_argument',
					message: 'payload must be an object',
					retriable: false,
					field: 'payload',
				},
			},
			{ method: 'POST', path: '/api/v1/events/publish', itemIndex: 2 },
		);
		expect(error).toBeInstanceOf(NodeApiError);
		expect(error.message).toBe('payload must be an object');
		expect(error.httpCode).toBe('400');
		expect(error.description).toBe(
			'POST /api/v1/events/publish answered HTTP 400, code: invalid_argument, field: payload, retriable: false',
		);
		expect(error.context.itemIndex).toBe(2);
	});

	it('handles a JSON error body received as text, and non-JSON bodies', () => {
		const fromText = sidecarApiError(
			node,
			401,
			'{"error": {"code": "unauthenticated", "message": "missing or invalid API key"}}',
			{ method: 'GET', path: '/api/v1/streams' },
		);
		expect(fromText.message).toBe('missing or invalid API key');
		const html = sidecarApiError(node, 502, '<html>Bad Gateway</html>', {
			method: 'GET',
			path: '/x',
		});
		expect(html.message).toBe('Friday sidecar answered HTTP 502: <html>Bad Gateway</html>');
		const empty = sidecarApiError(node, 500, undefined, { method: 'GET', path: '/x' });
		expect(empty.message).toBe('Friday sidecar answered HTTP 500');
	});

	it('names the unreachable URL without n8n replacing the message', () => {
		const error = transportError(
			node,
			Object.assign(new Error('getaddrinfo ENOTFOUND sidecar'), { code: 'ENOTFOUND' }),
			{ method: 'GET', url: 'http://sidecar:8000/api/v1/streams' },
		);
		expect(error.message).toBe(
			'Cannot reach the Friday sidecar at http://sidecar:8000/api/v1/streams: host not found',
		);
		expect(error.description).toContain('ENOTFOUND');
	});

	it('finds the network code inside the NodeApiError n8n wraps axios errors in', () => {
		const axiosError = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), {
			code: 'ECONNREFUSED',
		});
		const wrappedByN8n = new NodeApiError(node, axiosError as never);
		expect(wrappedByN8n.message).toBe('The service refused the connection - perhaps it is offline');
		const error = transportError(node, wrappedByN8n, {
			method: 'GET',
			url: `${BASE_URL}/api/v1/streams`,
		});
		expect(error).not.toBe(wrappedByN8n);
		expect(error.message).toBe(
			`Cannot reach the Friday sidecar at ${BASE_URL}/api/v1/streams: connection refused`,
		);
	});
});

describe('load options', () => {
	function loadOptionsContext(current: Record<string, unknown> = {}) {
		const ctx = mockDeep<ILoadOptionsFunctions>();
		const sidecar = new FakeSidecar();
		ctx.getCredentials.mockResolvedValue({ baseUrl: BASE_URL, apiKey: 'k' } as never);
		ctx.getNode.mockReturnValue(testNode('Friday', 'n8n-nodes-friday.friday'));
		ctx.getCurrentNodeParameter.mockImplementation(((name: string) => current[name]) as never);
		ctx.helpers.httpRequestWithAuthentication.mockImplementation(sidecar.request as never);
		return { ctx, sidecar };
	}

	it('lists streams and channels as publish targets', async () => {
		const { ctx, sidecar } = loadOptionsContext();
		sidecar.on(
			'GET',
			/\/streams$/,
			ok({
				streams: [
					{ name: 'service.down', groups: ['monitoring'], retention: 10000 },
					{ name: 'email.received', groups: ['email-processor'], retention: 10000 },
				],
			}),
		);
		sidecar.on('GET', /\/channels$/, ok({ channels: ['file.uploaded', 'agent.completed'] }));
		const options = await getPublishTargets.call(ctx);
		expect(options.map((o) => o.value)).toEqual([
			'email.received',
			'service.down',
			'agent.completed',
			'file.uploaded',
		]);
		expect(sidecar.calls.map((c) => c.url).sort()).toEqual([
			`${BASE_URL}/api/v1/channels`,
			`${BASE_URL}/api/v1/streams`,
		]);
	});

	it('lists the groups of the chosen stream', async () => {
		const { ctx, sidecar } = loadOptionsContext({ stream: 'email.received' });
		sidecar.on(
			'GET',
			/\/groups$/,
			ok({ groups: [{ stream: 'email.received', name: 'email-processor' }] }),
		);
		expect(await getGroups.call(ctx)).toEqual([
			{ name: 'email-processor', value: 'email-processor' },
		]);
		expect(sidecar.calls[0].qs).toEqual({ stream: 'email.received' });
	});

	it('shows the sidecar error when listing fails', async () => {
		const { ctx, sidecar } = loadOptionsContext();
		sidecar.on('GET', /\/streams$/, sidecarError(401, 'unauthenticated', 'invalid API key'));
		sidecar.on('GET', /\/channels$/, ok({ channels: [] }));
		await expect(getPublishTargets.call(ctx)).rejects.toThrow('invalid API key');
	});
});

describe('SSE parser', () => {
	it('parses events split across chunks, skips comments, joins multi-line data', () => {
		const parser = new SseParser();
		expect(parser.push(': keepalive\n\nevent: mess')).toEqual([]);
		expect(parser.push('age\ndata: {"a":\ndata: 1}\r')).toEqual([]);
		expect(parser.push('\n\r\n')).toEqual([{ event: 'message', data: '{"a":\n1}' }]);
		expect(parser.push(new TextEncoder().encode('id: 7\ndata:x\n\n'))).toEqual([
			{ event: 'message', data: 'x', id: '7' },
		]);
	});

	it('decodes multi-byte characters split between chunks', () => {
		const parser = new SseParser();
		const bytes = new TextEncoder().encode('data: é\n\n');
		expect(parser.push(bytes.slice(0, 7))).toEqual([]);
		expect(parser.push(bytes.slice(7))).toEqual([{ event: 'message', data: 'é' }]);
	});
});
