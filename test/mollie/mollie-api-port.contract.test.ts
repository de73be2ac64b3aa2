import { describeMolliePortContract } from './port-contract.js';
import { createMollieApiPort } from '../../src/mollie/mollie-api-port.js';
import { startMollieApiDouble, trustTestCertificates } from '../support/mollie-api-double.js';

trustTestCertificates();

describeMolliePortContract('real adapter on @mollie/api-client, over https to the Mollie API double', async () => {
  let now = Date.parse('2026-11-21T14:00:00Z');
  const double = await startMollieApiDouble({ now: () => new Date(now) });
  const port = createMollieApiPort({ kind: 'api_key', apiKey: 'test_contractSuiteKey0123456789abcd', mode: 'test', apiEndpoint: double.url });
  return {
    port,
    customer: (paymentId, outcome) => void double.simulator.simulate(paymentId, outcome),
    throughLink: (linkId, outcome) => double.simulator.payThroughLink(linkId, outcome).id,
    advanceClock: (ms) => {
      now += ms;
    },
    settleRefund: (refundId, status) => void double.simulator.settleRefund(refundId, status),
    close: () => double.close(),
  };
});
