import type { ILoadOptionsFunctions, INodePropertyOptions } from 'n8n-workflow';

import { fridayApiRequest } from './transport';

interface StreamsResponse {
	streams?: Array<{ name: string; groups?: string[]; retention?: number | null }>;
}
interface ChannelsResponse {
	channels?: string[];
}
interface GroupsResponse {
	groups?: Array<{ stream: string; name: string }>;
}

async function listStreams(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const response = (await fridayApiRequest.call(this, 'GET', '/api/v1/streams')) as StreamsResponse;
	return (response.streams ?? []).map((stream) => ({
		name: stream.name,
		value: stream.name,
		description: `Critical stream (consumer groups: ${(stream.groups ?? []).join(', ') || 'none'})`,
	}));
}

async function listChannels(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const response = (await fridayApiRequest.call(
		this,
		'GET',
		'/api/v1/channels',
	)) as ChannelsResponse;
	return (response.channels ?? []).map((channel) => ({
		name: channel,
		value: channel,
		description: 'Informational channel (Pub/Sub, not persisted)',
	}));
}

function byName(a: INodePropertyOptions, b: INodePropertyOptions): number {
	return a.name.localeCompare(b.name);
}

/** Critical streams: GET /api/v1/streams. */
export async function getStreams(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	return (await listStreams.call(this)).sort(byName);
}

/** Informational channels: GET /api/v1/channels. */
export async function getChannels(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	return (await listChannels.call(this)).sort(byName);
}

/** Everything an event can be published to: streams and channels. */
export async function getPublishTargets(
	this: ILoadOptionsFunctions,
): Promise<INodePropertyOptions[]> {
	const [streams, channels] = await Promise.all([listStreams.call(this), listChannels.call(this)]);
	return [...streams.sort(byName), ...channels.sort(byName)];
}

/** Consumer groups of the selected stream: GET /api/v1/groups?stream=. */
export async function getGroups(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const stream = String(this.getCurrentNodeParameter('stream') ?? '');
	if (stream === '' || stream.startsWith('=')) return [];
	const response = (await fridayApiRequest.call(this, 'GET', '/api/v1/groups', undefined, {
		stream,
	})) as GroupsResponse;
	return (response.groups ?? [])
		.map((group) => ({ name: group.name, value: group.name }))
		.sort(byName);
}
