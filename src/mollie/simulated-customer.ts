/**
 * The simulated customer's choice on a checkout or a payment link, as the checkout page and the `simulate` command make
 * it: the simulator changes the payment as Mollie would, then the server hears of it by the same path as Mollie's
 * webhook, so get_payment_status and list_logs read exactly as they would with Mollie.
 */
import type { MollieWebhook, WebhookSender } from '../webhooks/mollie-webhook.js';
import { MollieError } from './errors.js';
import type { Payment } from './port.js';
import type { CustomerOutcome, MollieSimulator } from './simulator.js';

export interface CustomerStep {
  /** The payment the choice made or finished; null when a link was left to expire. */
  payment: Payment | null;
  /** Whether the server could record it now (false: it is settled later, as for a webhook Mollie retries). */
  heard: boolean;
}

/** What the customer cannot do (pay a paid payment, use a withdrawn link); the message says why. */
export class CustomerRefused extends Error {
  override readonly name = 'CustomerRefused';
}

export async function playCustomer(simulator: MollieSimulator, webhook: MollieWebhook, id: string, outcome: CustomerOutcome, via: WebhookSender): Promise<CustomerStep> {
  let payment: Payment | null;
  try {
    payment = await choose(simulator, id, outcome);
  } catch (error) {
    if (error instanceof MollieError || error instanceof CustomerRefused) throw error;
    // The simulator checks again inside its own transaction: another process's customer got there between the two.
    throw new CustomerRefused(error instanceof Error ? error.message : String(error));
  }
  if (payment === null) return { payment: null, heard: true };
  const answer = await webhook.receive(payment.id, via);
  return { payment, heard: answer.status === 200 };
}

async function choose(simulator: MollieSimulator, id: string, outcome: CustomerOutcome): Promise<Payment | null> {
  if (id.startsWith('pl_')) {
    const refusal = simulator.linkRefusal(id);
    if (refusal !== null) throw new CustomerRefused(`${id}: ${refusal}`);
    if (outcome === 'expired') {
      simulator.expireLink(id);
      return null;
    }
    // As at Mollie: the customer's attempt is a new payment, and the link's webhook is told its tr_ id.
    return simulator.payThroughLink(id, outcome);
  }
  const current = await simulator.getPayment(id);
  if (current.status !== 'open' && current.status !== 'pending' && current.status !== 'authorized') {
    throw new CustomerRefused(`${id} is ${current.status}: only an open payment can become ${outcome}.`);
  }
  return simulator.simulate(id, outcome);
}
