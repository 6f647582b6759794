import type {
	IExecuteFunctions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import { getPublishTargets, getStreams } from '../shared/loadOptions';
import { acknowledge, getStreamStatus, publish, reject } from './operations';

export class Friday implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Friday',
		name: 'friday',
		icon: { light: 'file:../../icons/friday.svg', dark: 'file:../../icons/friday.dark.svg' },
		group: ['output'],
		version: 1,
		subtitle:
			'={{ {"publish": "Publish Event", "acknowledge": "Acknowledge Event", "reject": "Reject Event", "getStreamStatus": "Get Stream Status"}[$parameter["operation"]] }}',
		description:
			'Publish events to the Friday Event Bus, acknowledge or reject deliveries, and read stream status',
		defaults: {
			name: 'Friday',
		},
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: 'fridayApi',
				required: true,
			},
		],
		properties: [
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				options: [
					{
						name: 'Acknowledge Event',
						value: 'acknowledge',
						action: 'Acknowledge an event',
						description:
							'Mark a delivery of the Friday Trigger as processed (trigger acknowledge mode "Later in the Workflow")',
					},
					{
						name: 'Get Stream Status',
						value: 'getStreamStatus',
						action: 'Get the status of a stream',
						description: 'Length, pending entries, lag, consumers and alerts of a critical stream',
					},
					{
						name: 'Publish Event',
						value: 'publish',
						action: 'Publish an event',
						description: 'Publish an event to a critical stream or an informational channel',
					},
					{
						name: 'Reject Event',
						value: 'reject',
						action: 'Reject an event',
						description:
							'Negatively acknowledge a delivery with a reason: the sidecar retries it later, then dead-letters it',
					},
				],
				default: 'publish',
			},

			// ----------------------------------
			//         publish
			// ----------------------------------
			{
				displayName: 'Stream or Channel Name or ID',
				name: 'stream',
				type: 'options',
				typeOptions: {
					loadOptionsMethod: 'getPublishTargets',
				},
				required: true,
				default: '',
				description:
					'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>',
				displayOptions: {
					show: {
						operation: ['publish'],
					},
				},
			},
			{
				displayName: 'Payload',
				name: 'payloadSource',
				type: 'options',
				options: [
					{
						name: 'Define Below as JSON',
						value: 'json',
						description: 'Write the payload as a JSON object, expressions allowed',
					},
					{
						name: 'Selected Fields',
						value: 'fields',
						description: 'Only the listed fields of the input item',
					},
					{
						name: 'Whole Input Item',
						value: 'item',
						description: 'All fields of the input item (without its _friday metadata)',
					},
				],
				default: 'item',
				description: 'What to send as the event payload',
				displayOptions: {
					show: {
						operation: ['publish'],
					},
				},
			},
			{
				displayName: 'Fields to Include',
				name: 'fieldsToInclude',
				type: 'string',
				default: '',
				required: true,
				placeholder: 'e.g. email_id, category, sender.address',
				description:
					'Comma-separated field names of the input item. Dots select nested fields; the payload keeps the same nesting.',
				displayOptions: {
					show: {
						operation: ['publish'],
						payloadSource: ['fields'],
					},
				},
			},
			{
				displayName: 'Payload (JSON)',
				name: 'payloadJson',
				type: 'json',
				default: '{\n  "email_id": "abc"\n}',
				required: true,
				description: 'The payload, a JSON object',
				displayOptions: {
					show: {
						operation: ['publish'],
						payloadSource: ['json'],
					},
				},
			},
			{
				displayName: 'Send As',
				name: 'publishMode',
				type: 'options',
				options: [
					{
						name: 'All Items in One Batch Call',
						value: 'batch',
						description:
							'One call to /events/publish/batch (up to 1000 events per call): all events of a call are validated before any is written',
					},
					{
						name: 'One Event per Item',
						value: 'each',
						description: 'One call to /events/publish per input item',
					},
				],
				default: 'each',
				displayOptions: {
					show: {
						operation: ['publish'],
					},
				},
			},
			{
				displayName: 'Options',
				name: 'publishOptions',
				type: 'collection',
				placeholder: 'Add Option',
				default: {},
				displayOptions: {
					show: {
						operation: ['publish'],
					},
				},
				options: [
					{
						displayName: 'Correlation ID',
						name: 'correlationId',
						type: 'string',
						default: '',
						description: 'Links this event to others of the same flow (kept in the event metadata)',
					},
					{
						displayName: 'Idempotency Key',
						name: 'idempotencyKey',
						type: 'string',
						default: '',
						description:
							'The sidecar stores an event only once per key: publishing the same key again returns the first ID with duplicate = true',
					},
					{
						displayName: 'Source',
						name: 'source',
						type: 'string',
						default: '',
						placeholder: 'n8n:workflow:<workflow ID>',
						description:
							'Who published the event. Empty: n8n:workflow:&lt;ID of this workflow&gt;.',
					},
					{
						displayName: 'Trace Parent',
						name: 'traceParent',
						type: 'string',
						default: '',
						placeholder: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
						description:
							'W3C traceparent sent with the event (handed to its consumers). Empty: the trace of the input item from a Friday Trigger (_friday.traceparent) is continued with a new span ID; none without one.',
					},
				],
			},

			// ----------------------------------
			//         acknowledge / reject
			// ----------------------------------
			{
				displayName: 'Stream',
				name: 'ackStream',
				type: 'string',
				required: true,
				default: '={{ $json._friday.stream }}',
				description:
					'Stream of the delivery. The default reads the _friday object the Friday Trigger adds to its items.',
				displayOptions: {
					show: {
						operation: ['acknowledge', 'reject'],
					},
				},
			},
			{
				displayName: 'Consumer Group',
				name: 'ackGroup',
				type: 'string',
				required: true,
				default: '={{ $json._friday.group }}',
				description: 'Consumer group the delivery was read with',
				displayOptions: {
					show: {
						operation: ['acknowledge', 'reject'],
					},
				},
			},
			{
				displayName: 'Event ID',
				name: 'ackId',
				type: 'string',
				required: true,
				default: '={{ $json._friday.id }}',
				placeholder: 'e.g. 1717000000000-0',
				description: 'Entry ID of the delivery',
				displayOptions: {
					show: {
						operation: ['acknowledge', 'reject'],
					},
				},
			},
			{
				displayName: 'Reason',
				name: 'reason',
				type: 'string',
				required: true,
				default: 'Rejected by the n8n workflow',
				description:
					'Why the event is rejected; kept with the event and in the dead-letter entry if retries run out',
				displayOptions: {
					show: {
						operation: ['reject'],
					},
				},
			},

			// ----------------------------------
			//         getStreamStatus
			// ----------------------------------
			{
				displayName: 'Stream Name or ID',
				name: 'statusStream',
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
						operation: ['getStreamStatus'],
					},
				},
			},
		],
	};

	methods = {
		loadOptions: {
			getPublishTargets,
			getStreams,
		},
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const operation = this.getNodeParameter('operation', 0) as string;

		switch (operation) {
			case 'publish':
				return [await publish.call(this, items)];
			case 'acknowledge':
				return [await acknowledge.call(this, items)];
			case 'reject':
				return [await reject.call(this, items)];
			case 'getStreamStatus':
				return [await getStreamStatus.call(this, items)];
			default:
				throw new NodeOperationError(this.getNode(), `Unknown operation "${operation}"`);
		}
	}
}
