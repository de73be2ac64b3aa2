/**
 * The MCP server for one connection: tools/list shows the caller only what its policy allows, and tools/call goes
 * through the gate. Transports only wire a transport to this factory.
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, inputRequired, inputResponse, Server } from '@modelcontextprotocol/server';
import type { AuthInfo, CallToolResult, InputRequiredResult, ServerContext, Tool, jsonSchemaValidator } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { ConfirmInClient, Gate, InClientConfirmation, RepeatedAnswer, TransportName } from './gate.js';
import type { Caller } from './policy/decide.js';
import type { ToolDefinition } from './tool-definition.js';
import { toolErrorSchema } from './tool-error.js';
import { VERSION } from './version.js';

/** JSON Schema for a zod schema, without $schema: clients validate with draft-07 Ajv and refuse an unknown meta-schema. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-7', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

/**
 * The declared output: the tool's own result or the contract's error, each with audit_id and nothing else. Strict
 * clients validate structuredContent against this even when isError is true, so the error shape must be in it.
 */
export function outputSchemaOf(tool: ToolDefinition): Record<string, unknown> {
  const success = tool.output.extend({ audit_id: z.string().describe('The id of this call in the audit log.') });
  const failure = z.strictObject({ error: toolErrorSchema, audit_id: z.string() });
  return { type: 'object', ...jsonSchema(z.union([success, failure]), 'output') };
}

export function describeTool(tool: ToolDefinition): Tool {
  return {
    name: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema: jsonSchema(tool.input, 'input') as Tool['inputSchema'],
    outputSchema: outputSchemaOf(tool) as Tool['outputSchema'],
    annotations: { title: tool.title, ...tool.annotations },
  };
}

export interface ConnectionOptions {
  gate: Gate;
  /**
   * Who is calling. On stdio that is fixed for the process; over HTTP it is read from each request's bearer token,
   * which the HTTP layer has already checked and hands over as the request's AuthInfo.
   */
  caller: (authInfo: AuthInfo | undefined) => Caller;
  transport: TransportName;
  /** Started with the server, finished before the first tool call runs (never rejects). */
  callsWaitFor?: Promise<unknown>;
  /** Policy edits, so a client that listed the tools hears when its list changed (notifications/tools/list_changed). */
  policiesChanged?: (listener: () => void) => () => void;
  /**
   * false: never ask the person in the client, whatever it declares. A stateless server answers one request and is
   * gone: the client's answer to a question would reach another server (or replica) that never asked it.
   */
  askInClient?: boolean;
  /**
   * The protocol generation this instance speaks: 'legacy' (2025-11-25: initialize, a connection or session, and the
   * server may ask the client mid-call) or 'modern' (2026-07-28: every request stands alone; a question for the
   * person is the call's result, "input required", and the client repeats the call with the answer).
   */
  era?: 'legacy' | 'modern';
  /** Whether tools/list_changed is announced, when something other than policiesChanged sends it. */
  listChanged?: boolean;
}

/** The one question a call may put to the person at the client: yes or no. */
const APPROVE_FORM = {
  type: 'object' as const,
  properties: { approve: { type: 'boolean' as const, title: 'Approve', description: 'Yes lets the call go ahead; no stops it.' } },
  required: ['approve'],
};

/** What a 2026-07-28 request says about its client (the per-request envelope), or undefined. */
function fromEnvelope<T>(ctx: ServerContext, key: string): T | undefined {
  return (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[key] as T | undefined;
}

/**
 * The SDK's default validator, built on first use: the Server builds one in its constructor otherwise (an Ajv instance
 * with its formats, several ms at every start), and uses it only to check an answer to an elicitation.
 */
function validatorOnFirstUse(): jsonSchemaValidator {
  let validator: AjvJsonSchemaValidator | undefined;
  return { getValidator: (schema) => (validator ??= new AjvJsonSchemaValidator()).getValidator(schema) };
}

export function createMcpServer(options: ConnectionOptions): Server {
  const server = new Server(
    { name: 'mollie-invoice-mcp', version: VERSION },
    {
      jsonSchemaValidator: validatorOnFirstUse(),
      capabilities: { tools: { listChanged: options.listChanged ?? options.policiesChanged !== undefined } },
      instructions:
        'Issue pay links for invoices, check whether they were paid, refund paid payments and read the audit log. ' +
        'Amounts are decimal strings ("120.00"). Every call is checked against this agent\'s policy and recorded.',
    },
  );
  const descriptions = new Map<string, Tool>();
  const described = (tool: ToolDefinition): Tool => {
    let description = descriptions.get(tool.name);
    if (!description) {
      description = describeTool(tool);
      descriptions.set(tool.name, description);
    }
    return description;
  };

  // What this client was last shown, and for whom: after a policy edit it is told only if its own list changed.
  let listed: { caller: Caller; names: string } | null = null;
  const namesFor = (caller: Caller): string => options.gate.toolsFor(caller).map((tool) => tool.name).join(',');
  server.setRequestHandler('tools/list', (_request, ctx) => {
    const caller = options.caller(ctx.http?.authInfo);
    const tools = options.gate.toolsFor(caller);
    listed = { caller, names: tools.map((tool) => tool.name).join(',') };
    return { tools: tools.map(described) };
  });
  const stopListening = options.policiesChanged?.(() => {
    if (listed === null) return;
    const names = namesFor(listed.caller);
    if (names === listed.names) return;
    listed = { caller: listed.caller, names };
    void server.sendToolListChanged().catch(() => undefined);
  });
  if (stopListening) server.onclose = stopListening;
  server.setRequestHandler('tools/call', async (request, ctx): Promise<CallToolResult | InputRequiredResult> => {
    if (options.callsWaitFor) await options.callsWaitFor;
    const modern = options.era === 'modern';
    const confirm = options.askInClient === false ? null : modern ? askWithRepeat(ctx) : askOnTheConnection(server, ctx);
    const envelopeName = fromEnvelope<{ name?: unknown }>(ctx, CLIENT_INFO_META_KEY)?.name;
    const clientName = modern ? (typeof envelopeName === 'string' ? envelopeName : null) : (server.getClientVersion()?.name ?? null);
    const reply = await options.gate.call(
      { caller: options.caller(ctx.http?.authInfo), transport: options.transport, clientName, confirm },
      request.params.name,
      request.params.arguments,
    );
    if (reply.inputRequired) {
      return inputRequired({
        inputRequests: { approve: inputRequired.elicit({ mode: 'form', message: reply.inputRequired.question, requestedSchema: APPROVE_FORM }) },
        requestState: reply.inputRequired.token,
      });
    }
    return { content: [{ type: 'text', text: reply.text }], structuredContent: reply.structuredContent, isError: reply.isError };
  });
  return server;
}

/**
 * 2025-11-25: the question goes out on this request's own stream (over HTTP: the POST's event stream), so the client
 * sees it while it waits for the call. Only when the client declared it can show a form.
 */
function askOnTheConnection(server: Server, ctx: ServerContext): InClientConfirmation | null {
  if (!server.getClientCapabilities()?.elicitation?.form) return null;
  const ask: ConfirmInClient = async (message, timeoutMs) => {
    try {
      const answer = await server.elicitInput({ mode: 'form', message, requestedSchema: APPROVE_FORM }, { relatedRequestId: ctx.mcpReq.id, timeout: timeoutMs });
      if (answer.action === 'accept') return answer.content?.approve === true ? 'accepted' : 'declined';
      return answer.action === 'decline' ? 'declined' : 'canceled';
    } catch {
      // A timeout, a disconnected client or an answer that does not fit the form: no approval.
      return 'no_answer';
    }
  };
  return { kind: 'prompt', ask };
}

/**
 * 2026-07-28: the client declares on each request what it can do. A repeat carries the token it was given and the
 * person's answer; anything but an accepted form with approve: true is no.
 */
function askWithRepeat(ctx: ServerContext): InClientConfirmation | null {
  const elicitation = fromEnvelope<{ elicitation?: { form?: unknown; url?: unknown } }>(ctx, CLIENT_CAPABILITIES_META_KEY)?.elicitation;
  // A bare `elicitation: {}` means forms, as in 2025-11-25.
  const canShowForm = elicitation !== undefined && (elicitation.form !== undefined || elicitation.url === undefined);
  const token = ctx.mcpReq.requestState();
  if (typeof token !== 'string') return canShowForm ? { kind: 'repeat', answer: null } : null;
  const response = inputResponse(ctx.mcpReq.inputResponses, 'approve');
  const answer: RepeatedAnswer['answer'] =
    response.kind !== 'elicit' ? 'canceled' : response.action === 'accept' ? (response.content?.approve === true ? 'accepted' : 'declined') : response.action === 'decline' ? 'declined' : 'canceled';
  return { kind: 'repeat', answer: { token, answer } };
}
