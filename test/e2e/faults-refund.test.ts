/** Mollie faults against refund, end to end through the built server: see test/support/fault-matrix.ts. */
import { faultMatrix } from '../support/fault-matrix.js';

faultMatrix('refund');
