/** One server-sent event. */
export interface SseEvent {
	event: string;
	data: string;
	id?: string;
}

/**
 * Incremental parser for `text/event-stream` bodies: feed it chunks as they arrive and
 * it returns the events completed so far. Comment lines (`: keepalive`) are skipped.
 */
export class SseParser {
	private buffer = '';

	private dataLines: string[] = [];

	private eventName = '';

	private lastId: string | undefined;

	private readonly decoder = new TextDecoder();

	push(chunk: Uint8Array | string): SseEvent[] {
		this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
		const events: SseEvent[] = [];
		for (;;) {
			const match = /\r\n|\r|\n/.exec(this.buffer);
			if (!match) break;
			// A lone "\r" at the very end may be the first half of "\r\n": wait for more.
			if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
			const line = this.buffer.slice(0, match.index);
			this.buffer = this.buffer.slice(match.index + match[0].length);
			const event = this.processLine(line);
			if (event) events.push(event);
		}
		return events;
	}

	private processLine(line: string): SseEvent | undefined {
		if (line === '') {
			if (this.dataLines.length === 0) {
				this.eventName = '';
				return undefined;
			}
			const event: SseEvent = {
				event: this.eventName === '' ? 'message' : this.eventName,
				data: this.dataLines.join('\n'),
			};
			if (this.lastId !== undefined) event.id = this.lastId;
			this.dataLines = [];
			this.eventName = '';
			return event;
		}
		if (line.startsWith(':')) return undefined;
		const colon = line.indexOf(':');
		const field = colon === -1 ? line : line.slice(0, colon);
		let value = colon === -1 ? '' : line.slice(colon + 1);
		if (value.startsWith(' ')) value = value.slice(1);
		if (field === 'data') this.dataLines.push(value);
		else if (field === 'event') this.eventName = value;
		else if (field === 'id') this.lastId = value;
		return undefined;
	}
}
