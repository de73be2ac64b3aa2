/** Mollie faults against get_payment_status, end to end through the built server: see test/support/fault-matrix.ts. */
import { faultMatrix } from '../support/fault-matrix.js';

faultMatrix('get_payment_status');
