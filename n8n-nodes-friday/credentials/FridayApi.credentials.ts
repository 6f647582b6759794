import type {
	ICredentialDataDecryptedObject,
	ICredentialTestRequest,
	ICredentialType,
	IHttpRequestOptions,
	Icon,
	INodeProperties,
} from 'n8n-workflow';

export class FridayApi implements ICredentialType {
	name = 'fridayApi';

	displayName = 'Friday API';

	icon: Icon = { light: 'file:../icons/friday.svg', dark: 'file:../icons/friday.dark.svg' };

	documentationUrl =
		'https://github.com/friday-event-bus/friday-event-bus/tree/main/n8n-nodes-friday#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'http://localhost:8000',
			required: true,
			placeholder: 'http://localhost:8000',
			description: 'Address of the Friday sidecar, without the /api/v1 path',
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description:
				"A key from the sidecar's FRIDAY_API_KEYS, sent as a Bearer token. Leave empty only for a sidecar that runs without keys on a loopback address.",
		},
	];

	/**
	 * Written as a function on purpose: the declarative form (`'={{$credentials.apiKey}}'`)
	 * needs n8n's expression engine, which is no longer available to a trigger once
	 * `trigger()` has returned, so every background request of the Friday Trigger would fail.
	 */
	authenticate = async (
		credentials: ICredentialDataDecryptedObject,
		requestOptions: IHttpRequestOptions,
	): Promise<IHttpRequestOptions> => {
		const apiKey = typeof credentials.apiKey === 'string' ? credentials.apiKey.trim() : '';
		if (apiKey === '') return requestOptions;
		return {
			...requestOptions,
			headers: {
				...(requestOptions.headers ?? {}),
				Authorization: `Bearer ${apiKey}`,
			},
		};
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl}}',
			url: '/api/v1/streams',
			method: 'GET',
			headers: { Accept: 'application/json' },
		},
		rules: [
			{
				type: 'responseCode',
				properties: {
					value: 401,
					message: 'The Friday sidecar refused the API key (HTTP 401): check the API Key',
				},
			},
			{
				type: 'responseCode',
				properties: {
					value: 403,
					message:
						'The API key is valid but lacks a role for listing streams (HTTP 403): give it publish, consume or admin',
				},
			},
			{
				type: 'responseCode',
				properties: {
					value: 404,
					message:
						'No /api/v1/streams at this address (HTTP 404): is the Base URL the Friday sidecar, without /api/v1?',
				},
			},
		],
	};
}
