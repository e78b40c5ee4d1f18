// docs/errors.md documents every code users can see; this keeps its Storage section in step.
import { checkErrorsDoc } from '@hati/test-helpers';
import t from 'tap';
import { StorageErrorCode } from '../src/index.js';

checkErrorsDoc(t, { section: 'Storage', codes: Object.values(StorageErrorCode) });
