/** The registry: every tool this server offers. A policy decides which of them each agent sees. */
import type { ToolCapabilities } from '../src/policy/policy.js';
import type { ToolDefinition } from '../src/tool-definition.js';
import { cancelInvoicePayment } from './cancel_invoice_payment.js';
import { createInvoicePayment } from './create_invoice_payment.js';
import { getPaymentStatus } from './get_payment_status.js';
import { listLogs } from './list_logs.js';
import { refund } from './refund.js';

export const TOOLS: readonly ToolDefinition[] = [createInvoicePayment, getPaymentStatus, refund, listLogs, cancelInvoicePayment];

export const TOOL_CAPABILITIES: readonly ToolCapabilities[] = TOOLS.map((tool) => ({ name: tool.name, ...tool.capabilities }));
