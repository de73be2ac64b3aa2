/** Mollie faults against create_invoice_payment, end to end through the built server: see test/support/fault-matrix.ts. */
import { faultMatrix } from '../support/fault-matrix.js';

faultMatrix('create_invoice_payment');
