// docs/errors.md documents every code users can see; this keeps its Client section in step.
import { checkErrorsDoc } from '@hati/test-helpers';
import t from 'tap';
import { ClientErrorCode } from '../src/index.js';

checkErrorsDoc(t, { section: 'Client', codes: Object.values(ClientErrorCode) });

t.test('the client exports every code a reply can carry, and its own', async (t) => {
  const client = await import('../src/index.js');
  const protocol = await import('@hati/protocol');
  t.same(client.WireErrorCode, protocol.WireErrorCode);
  t.ok(Object.values(client.WireErrorCode).includes('STORAGE_TYPE_INVALID'), 'storage codes');
  t.ok(Object.values(client.WireErrorCode).includes('SHUTTING_DOWN'), 'server codes');
  t.ok(Object.values(client.WireErrorCode).includes('WRONG_ARITY'), 'protocol codes');
  const overlap = Object.values(client.ClientErrorCode).filter((code) => code in client.WireErrorCode);
  t.same(overlap, [], "the client's own codes are distinct from the server's");
});
