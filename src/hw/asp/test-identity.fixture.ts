// The TEST-ONLY machine identity of test/fixtures/machine (see its README), for tests.
import { fixture } from '../../../test/fixtures.js';
import { chipIdentityFromJson, type ChipIdentity } from './chip-identity.js';

export const TEST_IDENTITY_SEED = 'svsm-ts test machine identity (TEST ONLY)';
export const TEST_IDENTITY_ISSUED_AT = new Date('2025-01-01T00:00:00Z');

export function testIdentityJson(): string {
  return new TextDecoder().decode(fixture('machine/identity.json'));
}

export function loadTestIdentity(): ChipIdentity {
  return chipIdentityFromJson(testIdentityJson());
}
