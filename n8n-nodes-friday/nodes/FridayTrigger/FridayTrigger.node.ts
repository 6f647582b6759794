import type {
	IDataObject,
	INodeType,
	INodeTypeDescription,
	ITriggerFunctions,
	ITriggerResponse,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import type { AckMode, OutputShape } from '../shared/delivery';
import { getChannels, getGroups, getStreams } from '../shared/loadOptions';
import { getFridayBaseUrl } from '../shared/transport';
import type { TriggerSettings } from './consumer';
import { FridayConsumer } from './consumer';

const ACK_MODES: AckMode[] = [
	'immediately',
	'executionFinishes',
	'executionFinishesSuccessfully',
	'laterInWorkflow',
];

/** Default Long Poll Wait (block_ms of each read), in milliseconds. */
export const LONG_POLL_DEFAULT_MS = 25_000;
/** Shortest Long Poll Wait the trigger accepts (the sidecar would take 0: no wait). */
export const LONG_POLL_MIN_MS = 1_000;
/** Longest Long Poll Wait: the sidecar's own limit on block_ms (MAX_BLOCK_MS, 30000 ms). */
export const LONG_POLL_MAX_MS = 30_000;
/** Default Keep-Alive Interval in seconds, well below the sidecar's default claim idle time (60 s). */
export const KEEP_ALIVE_DEFAULT_S = 20;

/** Consumer names allow A-Za-z0-9._-:@ (1–200 characters). */
export function defaultConsumerName(workflowId: string | undefined): string {
	const id = String(workflowId ?? '').replace(/[^A-Za-z0-9._:@-]/g, '-');
	return `n8n-${id === '' ? 'unsaved' : id}`.slice(0, 200);
}

function requireText(this: ITriggerFunctions, name: string, label: string): string {
	const value = this.getNodeParameter(name, '') as unknown;
	const text = value === null || value === undefined ? '' : String(value).trim();
	if (text === '') {
		throw new NodeOperationError(this.getNode(), `${label} is required`);
	}
	return text;
}

/** Reads every parameter up front: expressions cannot be evaluated once trigger() returned. */
export async function readTriggerSettings(this: ITriggerFunctions): Promise<TriggerSettings> {
	const source = this.getNodeParameter('source', 'stream') as 'stream' | 'channel';
	const options = this.getNodeParameter('options', {}) as IDataObject;
	const workflowId = String(this.getWorkflow().id ?? '');

	const ackModeValue = this.getNodeParameter('ackMode', 'executionFinishesSuccessfully') as AckMode;
	const ackMode = ACK_MODES.includes(ackModeValue) ? ackModeValue : 'executionFinishesSuccessfully';

	const parallel = Math.floor(Number(options.parallelExecutions ?? 1));
	if (!Number.isFinite(parallel) || parallel < 1) {
		throw new NodeOperationError(this.getNode(), 'Parallel Executions must be 1 or more');
	}
	const blockMs = Math.floor(Number(options.blockMs ?? LONG_POLL_DEFAULT_MS));
	if (!Number.isFinite(blockMs) || blockMs < LONG_POLL_MIN_MS || blockMs > LONG_POLL_MAX_MS) {
		throw new NodeOperationError(
			this.getNode(),
			`Long Poll Wait must be between ${LONG_POLL_MIN_MS} and ${LONG_POLL_MAX_MS} milliseconds`,
		);
	}
	const closeTimeout = Number(options.closeTimeout ?? 10);
	if (!Number.isFinite(closeTimeout) || closeTimeout < 0) {
		throw new NodeOperationError(this.getNode(), 'Shutdown Grace Period must be 0 or more seconds');
	}

	const keepAlive = Number(options.keepAlive ?? KEEP_ALIVE_DEFAULT_S);
	if (!Number.isFinite(keepAlive) || keepAlive < 0) {
		throw new NodeOperationError(this.getNode(), 'Keep-Alive Interval must be 0 or more seconds');
	}

	const outcomeTimeout = Number(options.outcomeTimeout ?? 0);
	if (!Number.isFinite(outcomeTimeout) || outcomeTimeout < 0) {
		throw new NodeOperationError(this.getNode(), 'Outcome Timeout must be 0 or more seconds');
	}

	const settings: TriggerSettings = {
		source: source === 'channel' ? 'channel' : 'stream',
		stream: '',
		group: '',
		channel: '',
		consumer: '',
		ackMode,
		parallel,
		output:
			(options.output as OutputShape) === 'payloadOnly' ? 'payloadOnly' : 'payloadWithMetadata',
		blockMs,
		closeTimeoutMs: Math.round(closeTimeout * 1000),
		keepAliveMs: Math.round(keepAlive * 1000),
		outcomeTimeoutMs: Math.round(outcomeTimeout * 1000),
		baseUrl: await getFridayBaseUrl.call(this),
		workflowId,
		nodeName: this.getNode().name,
	};

	if (settings.source === 'channel') {
		settings.channel = requireText.call(this, 'channel', 'Channel');
	} else {
		settings.stream = requireText.call(this, 'stream', 'Stream');
		settings.group = requireText.call(this, 'group', 'Consumer Group');
		const consumer = String(this.getNodeParameter('consumer', '') ?? '').trim();
		settings.consumer = consumer === '' ? defaultConsumerName(workflowId) : consumer;
	}
	return settings;
}

export class FridayTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Friday Trigger',
		name: 'fridayTrigger',
		icon: { light: 'file:../../icons/friday.svg', dark: 'file:../../icons/friday.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle:
			'={{$parameter["source"] === "channel" ? $parameter["channel"] : $parameter["stream"] + " / " + $parameter["group"]}}',
		description:
			'Starts the workflow on Friday Event Bus events: critical streams through a consumer group, or informational channels',
		eventTriggerDescription: 'Waiting for the next event on the Friday Event Bus',
		defaults: {
			name: 'Friday Trigger',
		},
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: 'fridayApi',
				required: true,
			},
		],
		properties: [
			{
				displayName: 'Source',
				name: 'source',
				type: 'options',
				noDataExpression: true,
				options: [
					{
						name: 'Critical Stream (Consumer Group)',
						value: 'stream',
						description:
							'Redis Stream read through a consumer group: every event is delivered until acknowledged',
					},
					{
						name: 'Informational Channel',
						value: 'channel',
						description: 'Pub/Sub channel: events are not persisted and need no acknowledgement',
					},
				],
				default: 'stream',
			},
			{
				displayName: 'Stream Name or ID',
				name: 'stream',
				type: 'options',
				typeOptions: {
					loadOptionsMethod: 'getStreams',
				},
				required: true,
				default: '',
				description:
					'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>',
				displayOptions: {
					show: {
						source: ['stream'],
					},
				},
			},
			{
				displayName: 'Consumer Group Name or ID',
				name: 'group',
				type: 'options',
				typeOptions: {
					loadOptionsMethod: 'getGroups',
					loadOptionsDependsOn: ['stream'],
				},
				required: true,
				default: '',
				description:
					'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>',
				displayOptions: {
					show: {
						source: ['stream'],
					},
				},
			},
			{
				displayName: 'Channel Name or ID',
				name: 'channel',
				type: 'options',
				typeOptions: {
					loadOptionsMethod: 'getChannels',
				},
				required: true,
				default: '',
				description:
					'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>',
				displayOptions: {
					show: {
						source: ['channel'],
					},
				},
			},
			{
				displayName: 'Acknowledge When',
				name: 'ackMode',
				type: 'options',
				options: [
					{
						name: 'Execution Finishes',
						value: 'executionFinishes',
						description: 'Acknowledge after the execution ends, whether it succeeded or failed',
					},
					{
						name: 'Execution Finishes Successfully',
						value: 'executionFinishesSuccessfully',
						description:
							'Acknowledge a successful run; reject a failed one with its error message, so the sidecar retries it and then dead-letters it',
					},
					{
						name: 'Immediately',
						value: 'immediately',
						description:
							'Acknowledge as soon as the event is read, before the workflow runs (at most once)',
					},
					{
						name: 'Later in the Workflow',
						value: 'laterInWorkflow',
						description:
							'A Friday node (Acknowledge Event / Reject Event) does it; events never acknowledged are delivered again',
					},
				],
				default: 'executionFinishesSuccessfully',
				displayOptions: {
					show: {
						source: ['stream'],
					},
				},
			},
			{
				displayName:
					'Add a Friday node with the operation Acknowledge Event or Reject Event to this workflow. It reads the delivery from the _friday field of the trigger items.',
				name: 'laterNotice',
				type: 'notice',
				default: '',
				displayOptions: {
					show: {
						source: ['stream'],
						ackMode: ['laterInWorkflow'],
					},
				},
			},
			{
				displayName: 'Consumer Name',
				name: 'consumer',
				type: 'string',
				default: '',
				placeholder: 'n8n-<workflow ID>',
				description:
					'Name of this consumer inside the group. Empty: n8n-&lt;workflow ID&gt;, stable for the workflow.',
				displayOptions: {
					show: {
						source: ['stream'],
					},
				},
			},
			{
				displayName: 'Options',
				name: 'options',
				type: 'collection',
				placeholder: 'Add Option',
				default: {},
				options: [
					{
						displayName: 'Keep-Alive Interval (Seconds)',
						name: 'keepAlive',
						type: 'number',
						typeOptions: { minValue: 0 },
						default: KEEP_ALIVE_DEFAULT_S,
						description:
							'While an execution runs, tell the sidecar every this many seconds that the event is still being processed, so it is not handed to another consumer. Keep it well below the sidecar claim idle time (60 s by default). 0 turns it off.',
						displayOptions: {
							show: {
								'/source': ['stream'],
							},
						},
					},
					{
						displayName: 'Long Poll Wait (Ms)',
						name: 'blockMs',
						type: 'number',
						typeOptions: { minValue: LONG_POLL_MIN_MS, maxValue: LONG_POLL_MAX_MS },
						default: LONG_POLL_DEFAULT_MS,
						description:
							'How long one read waits in the sidecar for new events (block_ms). Also used by "Listen for test event".',
					},
					{
						displayName: 'Outcome Timeout (Seconds)',
						name: 'outcomeTimeout',
						type: 'number',
						typeOptions: { minValue: 0 },
						default: 0,
						description:
							'Stop waiting for n8n to report an execution after this many seconds: its keep-alive stops, its parallel slot is freed and the event is left unacknowledged, so the sidecar delivers it again after its claim idle time (counted, as after a crash). Use it in n8n queue mode when finished Bull jobs are not kept (N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED/FAILED = 0), where the main can miss the end of a fast execution. The cost: that run may have completed, so its side effects can happen twice when the event is redelivered. Set it above your longest execution. 0 turns it off (wait as long as it takes).',
						displayOptions: {
							show: {
								'/source': ['stream'],
							},
						},
					},
					{
						displayName: 'Output',
						name: 'output',
						type: 'options',
						options: [
							{
								name: 'Payload With Metadata',
								value: 'payloadWithMetadata',
								description:
									'The payload fields plus a _friday object (entry ID, delivery count, …)',
							},
							{
								name: 'Payload Only',
								value: 'payloadOnly',
								description:
									'Only the payload fields (_friday is kept when acknowledging later in the workflow)',
							},
						],
						default: 'payloadWithMetadata',
					},
					{
						displayName: 'Parallel Executions',
						name: 'parallelExecutions',
						type: 'number',
						typeOptions: { minValue: 1, maxValue: 100 },
						default: 1,
						description:
							'Max executions running at once for this trigger. A read never asks for more events than free slots.',
						displayOptions: {
							show: {
								'/source': ['stream'],
							},
						},
					},
					{
						displayName: 'Shutdown Grace Period (Seconds)',
						name: 'closeTimeout',
						type: 'number',
						typeOptions: { minValue: 0 },
						default: 10,
						description:
							'When the workflow is deactivated, how long to wait for running executions to finish and be acknowledged. Events still running after that stay pending and are delivered again.',
						displayOptions: {
							show: {
								'/source': ['stream'],
							},
						},
					},
				],
			},
		],
	};

	methods = {
		loadOptions: {
			getStreams,
			getGroups,
			getChannels,
		},
	};

	async trigger(this: ITriggerFunctions): Promise<ITriggerResponse> {
		const settings = await readTriggerSettings.call(this);
		const consumer = new FridayConsumer(this, settings);

		const closeFunction = async () => await consumer.close();

		if (this.getMode() === 'manual') {
			return {
				closeFunction,
				manualTriggerFunction: async () => consumer.startManual(),
			};
		}

		consumer.start();
		return { closeFunction };
	}
}
