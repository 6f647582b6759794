import type { INode } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

/**
 * Returns the error as a NodeApiError / NodeOperationError: n8n errors are kept as they
 * are (so the sidecar's message survives), anything else is wrapped.
 */
export function toNodeError(
	node: INode,
	error: unknown,
	itemIndex?: number,
): NodeApiError | NodeOperationError {
	if (error instanceof NodeApiError || error instanceof NodeOperationError) {
		if (itemIndex !== undefined && error.context.itemIndex === undefined) {
			error.context.itemIndex = itemIndex;
		}
		return error;
	}
	const wrapped =
		error instanceof Error ? error : new Error(typeof error === 'string' ? error : String(error));
	return new NodeOperationError(node, wrapped, { itemIndex });
}

/** Message of any thrown value. */
export function errorMessage(error: unknown): string {
	if (error && typeof error === 'object' && typeof (error as Error).message === 'string') {
		const message = (error as Error).message;
		if (message !== '') return message;
	}
	return typeof error === 'string' && error !== '' ? error : 'Unknown error';
}
