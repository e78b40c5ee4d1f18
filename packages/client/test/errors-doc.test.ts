// docs/errors.md documents every code users can see; this keeps its Client section in step.
import { checkErrorsDoc } from '@hati/test-helpers';
import t from 'tap';
import { ClientErrorCode } from '../src/index.js';

checkErrorsDoc(t, { section: 'Client', codes: Object.values(ClientErrorCode) });
