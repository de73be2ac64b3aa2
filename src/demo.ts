/**
 * `mollie-invoice-mcp demo`: an offline walk-through on the simulator, printed for a person to read.
 * It drives the Mollie port directly; the policy gate and audit log join it when they land.
 */
import { MollieError } from './mollie/errors.js';
import { describeAmount, parseAmount, toAmount } from './mollie/money.js';
import type { MolliePort, Payment } from './mollie/port.js';
import { MollieSimulator } from './mollie/simulator.js';

export interface DemoOutput {
  write(line: string): void;
}

export async function runDemo(out: DemoOutput = { write: (line) => process.stdout.write(`${line}\n`) }): Promise<void> {
  const mollie = new MollieSimulator();
  const step = (n: number, title: string) => out.write(`\n${n}. ${title}`);
  const say = (line: string) => out.write(`   ${line}`);

  out.write('mollie-invoice-mcp demo: offline, on the built-in Mollie simulator (no account, no network).');

  step(1, 'Create a pay link for invoice 2026-114 over 120.00 EUR');
  const request = {
    amount: toAmount(parseAmount('120.00', 'EUR'), 'EUR'),
    description: 'Invoice 2026-114',
    metadata: { invoice_id: '2026-114' },
  };
  const payment = await mollie.createPayment(request, { idempotencyKey: 'demo-invoice-2026-114' });
  say(`payment ${payment.id} is ${payment.status}; pay link ${payment.checkoutUrl}`);
  say(`the link expires at ${payment.expiresAt}`);

  step(2, 'The same request again (an agent retrying after a dropped connection)');
  const again = await mollie.createPayment(request, { idempotencyKey: 'demo-invoice-2026-114' });
  say(`Mollie replays the first answer: ${again.id} (${again.id === payment.id ? 'the same payment, nothing charged twice' : 'A SECOND PAYMENT'})`);

  step(3, 'The customer opens the link and pays');
  mollie.simulate(payment.id, 'paid');
  printStatus(await mollie.getPayment(payment.id), say);

  step(4, 'Refund 20.00 EUR of it');
  const refund = await mollie.createRefund(payment.id, { amount: toAmount(parseAmount('20.00', 'EUR'), 'EUR'), description: 'Goodwill discount' }, { idempotencyKey: 'demo-refund-1' });
  say(`refund ${refund.id} is ${refund.status} for ${describeAmount(refund.amount)}`);
  printStatus(await mollie.getPayment(payment.id), say);

  step(5, 'Try to refund 150.00 EUR, more than what remains');
  await showRefusal(mollie, payment.id, '150.00', say);

  step(6, 'A second invoice, never paid: its link expires');
  const unpaid = await mollie.createPayment(
    { amount: toAmount(parseAmount('45.5', 'EUR'), 'EUR'), description: 'Invoice 2026-115', metadata: { invoice_id: '2026-115' } },
    { idempotencyKey: 'demo-invoice-2026-115' },
  );
  mollie.simulate(unpaid.id, 'expired');
  printStatus(await mollie.getPayment(unpaid.id), say);
  await showRefusal(mollie, unpaid.id, '10.00', say);

  out.write('\nDone. Every payment above lives only in this process; nothing reached Mollie.');
}

function printStatus(payment: Payment, say: (line: string) => void): void {
  const parts = [`payment ${payment.id}: ${payment.status}${payment.isFinal ? ' (final)' : ''}`, `amount ${describeAmount(payment.amount)}`];
  if (payment.paidAt) parts.push(`paid at ${payment.paidAt} by ${payment.method}`);
  if (payment.amountRefunded) parts.push(`refunded ${describeAmount(payment.amountRefunded)}`);
  if (payment.amountRemaining) parts.push(`refundable ${describeAmount(payment.amountRemaining)}`);
  if (payment.expiredAt) parts.push(`expired at ${payment.expiredAt}`);
  say(parts.join('; '));
}

async function showRefusal(mollie: MolliePort, paymentId: string, value: string, say: (line: string) => void): Promise<void> {
  try {
    await mollie.createRefund(paymentId, { amount: toAmount(parseAmount(value, 'EUR'), 'EUR') }, { idempotencyKey: `demo-refund-${paymentId}-${value}` });
    say('UNEXPECTED: the refund went through');
  } catch (error) {
    if (!(error instanceof MollieError)) throw error;
    say(`refused (${error.code}, Mollie ${error.mollie?.status ?? '-'}): ${error.message}`);
  }
}
