/** Mollie faults against create_invoice_payment making a payment link (the default), end to end: see test/support/fault-matrix.ts. */
import { faultMatrix } from '../support/fault-matrix.js';

faultMatrix('create_invoice_payment');
