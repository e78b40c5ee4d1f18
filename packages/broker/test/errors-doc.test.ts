// docs/errors.md documents every code users can see; this keeps its Broker section in step.
import { checkErrorsDoc } from '@hati/test-helpers';
import t from 'tap';
import { BrokerErrorCode } from '../src/index.js';

checkErrorsDoc(t, { section: 'Broker', codes: Object.values(BrokerErrorCode) });
