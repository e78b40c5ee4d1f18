// docs/errors.md documents every code users can see; this keeps its Protocol section in step.
import { checkErrorsDoc } from '@hati/test-helpers';
import t from 'tap';
import { ProtocolErrorCode } from '../src/index.js';

checkErrorsDoc(t, { section: 'Protocol', codes: Object.values(ProtocolErrorCode) });
