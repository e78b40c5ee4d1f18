// docs/errors.md documents every code users can see; this keeps its Server section in step.
import { checkErrorsDoc } from '@hati/test-helpers';
import t from 'tap';
import { ServerErrorCode } from '../src/index.js';

checkErrorsDoc(t, { section: 'Server', codes: Object.values(ServerErrorCode) });
