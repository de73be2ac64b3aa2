/**
 * The simulated customer's choice on a checkout or a payment link, as the checkout page and the `simulate` command make
 * it: the simulator changes the payment as Mollie would, then the server hears of it by the same path as Mollie's
 * webhook, so get_payment_status and list_logs read exactly as they would with Mollie.
 */
import type { MollieWebhook, WebhookSender } from '../webhooks/mollie-webhook.js';
import type { Payment } from './port.js';
import type { CustomerOutcome, MollieSimulator } from './simulator.js';

export interface CustomerStep {
  /** The payment the choice made or finished; null when a link was left to expire. */
  payment: Payment | null;
  /** Whether the server could record it now (false: it is settled later, as for a webhook Mollie retries). */
  heard: boolean;
}

export class CustomerRefused extends Error {
  override readonly name = 'CustomerRefused';
}

export async function playCustomer(simulator: MollieSimulator, webhook: MollieWebhook, id: string, outcome: CustomerOutcome, via: WebhookSender): Promise<CustomerStep> {
  let payment: Payment;
  if (id.startsWith('pl_')) {
    const refusal = simulator.linkRefusal(id);
    if (refusal !== null) throw new CustomerRefused(`${id}: ${refusal}`);
    if (outcome === 'expired') {
      simulator.expireLink(id);
      return { payment: null, heard: true };
    }
    // As at Mollie: the customer's attempt is a new payment, and the link's webhook is told its tr_ id.
    payment = simulator.payThroughLink(id, outcome);
  } else {
    const current = await simulator.getPayment(id);
    if (current.status !== 'open' && current.status !== 'pending' && current.status !== 'authorized') {
      throw new CustomerRefused(`${id} is ${current.status}: only an open payment can become ${outcome}.`);
    }
    payment = simulator.simulate(id, outcome);
  }
  const answer = await webhook.receive(payment.id, via);
  return { payment, heard: answer.status === 200 };
}
