/** Mollie faults against create_invoice_payment with kind "checkout", end to end: see test/support/fault-matrix.ts. */
import { faultMatrix } from '../support/fault-matrix.js';

faultMatrix('create_invoice_payment', 'checkout');
