// How a command is declared: its handles (with the interface type that restricts each and the
// authorization role of those marked @ in Part 3), whether its first parameters may be encrypted,
// a parser for its parameters and the action. The dispatcher does everything else the same way
// for all commands (Part 3, section 5 "command processing").

import { HT, LIMITS, RC, RH } from './constants.js';
import { fail } from './errors.js';
import type { Entity, TpmMachine } from './machine.js';
import type { Reader, Writer } from './marshal.js';

export type AuthRole = 'USER' | 'ADMIN' | 'DUP';

/** TPMI_* handle interface types (Part 2), as resolvers to an entity. */
export type HandleKind =
  | 'object'
  | 'hierarchy'
  | 'hierarchyOrNull'
  | 'provision'
  | 'clear'
  | 'lockout'
  | 'hierarchyAuth'
  | 'nvAuth'
  | 'nvIndex'
  | 'pcr'
  | 'pcrOrNull'
  | 'entity'
  | 'policySession'
  | 'objectOrNull'
  | 'entityOrNull'
  | 'context'
  | 'sequence';

export interface HandleSpec {
  readonly kind: HandleKind;
  readonly auth?: AuthRole;
}

/** What a command's action sees besides its handles and parameters. */
export interface ExecContext {
  readonly cc: number;
  readonly locality: number;
  /** For each authorized handle (in order), the kind of session that authorized it. */
  readonly authKinds: ReadonlyArray<'password' | 'hmac' | 'policy'>;
  /** The handle the command returns (CreatePrimary, Load, ...), set by the action. */
  returnHandle?: number;
}

/** The resolved handles, in order (a command reads only as many as it declares). */
export type Handles = readonly [Entity, Entity, Entity];

export interface CommandDef<P = unknown> {
  readonly cc: number;
  readonly name: string;
  readonly handles: readonly HandleSpec[];
  readonly returnsHandle?: boolean;
  /** The first command parameter is a TPM2B and may be decrypted (Part 1, 21.1). */
  readonly decrypt?: boolean;
  /** The first response parameter is a TPM2B and may be encrypted. */
  readonly encrypt?: boolean;
  /** The command takes no sessions (TPM_ST_SESSIONS is TPM_RC_AUTH_CONTEXT). */
  readonly noSessions?: boolean;
  /** The response HMAC uses the entity's authValue after the command (HierarchyChangeAuth). */
  readonly authAfter?: boolean;
  /** TPMA_CC.nv: the command may write NV. */
  readonly nv?: boolean;
  /** TPMA_CC.flushed: the command flushes the handles it is given. */
  readonly flushed?: boolean;
  parse(r: Reader): P;
  /** Runs the command; must check everything before changing any state. */
  run(m: TpmMachine, handles: Handles, params: P, out: Writer, ctx: ExecContext): void;
}

/** Declares a command, keeping the parameter type between parse and run. */
export function command<P>(def: CommandDef<P>): CommandDef {
  return def as CommandDef;
}

const HIERARCHIES = new Set<number>([RH.OWNER, RH.ENDORSEMENT, RH.PLATFORM]);

/**
 * Resolves a handle of the given interface type; an unnumbered TPM_RC_HANDLE (or a
 * TPM_RC_REFERENCE_H0 for a transient object or session that is not loaded) when it does not fit.
 */
export function resolveHandle(m: TpmMachine, kind: HandleKind, h: number, n: number): Entity {
  const type = h >>> 24;
  switch (kind) {
    case 'object':
      return objectOf(m, h, n);
    case 'objectOrNull':
      return h === RH.NULL ? { kind: 'permanent', handle: h } : objectOf(m, h, n);
    case 'hierarchy':
      return permanent(m, h, HIERARCHIES.has(h));
    case 'hierarchyOrNull':
      return permanent(m, h, HIERARCHIES.has(h) || h === RH.NULL);
    case 'provision':
      return permanent(m, h, h === RH.OWNER || h === RH.PLATFORM);
    case 'clear':
      return permanent(m, h, h === RH.LOCKOUT || h === RH.PLATFORM);
    case 'lockout':
      return permanent(m, h, h === RH.LOCKOUT);
    case 'hierarchyAuth':
      return permanent(m, h, HIERARCHIES.has(h) || h === RH.LOCKOUT);
    case 'nvAuth':
      return type === HT.NV_INDEX
        ? nvOf(m, h)
        : permanent(m, h, h === RH.OWNER || h === RH.PLATFORM);
    case 'nvIndex':
      return nvOf(m, h);
    case 'pcr':
      return pcrOf(h);
    case 'pcrOrNull':
      return h === RH.NULL ? { kind: 'permanent', handle: h } : pcrOf(h);
    case 'policySession': {
      const s = m.loadedSession(h);
      if (type !== HT.POLICY_SESSION) fail(RC.HANDLE);
      if (s === undefined) fail(RC.REFERENCE_H0 + n - 1);
      return { kind: 'session', handle: h, session: s };
    }
    case 'entity':
    case 'entityOrNull':
      if (type === HT.PERMANENT) {
        return permanent(
          m,
          h,
          HIERARCHIES.has(h) || h === RH.LOCKOUT || (kind === 'entityOrNull' && h === RH.NULL),
        );
      }
      if (type === HT.NV_INDEX) return nvOf(m, h);
      if (type === HT.PCR) return pcrOf(h);
      return objectOf(m, h, n);
    case 'sequence': {
      // TPMI_DH_OBJECT naming a sequence object (SequenceUpdate, SequenceComplete, ...).
      if (type !== HT.TRANSIENT) fail(RC.HANDLE);
      const seq = m.sequences.get(h);
      if (seq === undefined) fail(m.objects.has(h) ? RC.MODE : RC.REFERENCE_H0 + n - 1);
      return { kind: 'sequence', handle: h, seq };
    }
    case 'context': {
      if (type === HT.HMAC_SESSION || type === HT.POLICY_SESSION) {
        const s = m.loadedSession(h);
        if (s === undefined) fail(RC.REFERENCE_H0 + n - 1);
        return { kind: 'session', handle: h, session: s };
      }
      if (type !== HT.TRANSIENT) fail(RC.HANDLE);
      return objectOf(m, h, n);
    }
  }
}

// The resolvers are module functions rather than closures: resolveHandle runs for every handle of
// every command.

function permanent(m: TpmMachine, h: number, allowed: boolean): Entity {
  if (h >>> 24 !== HT.PERMANENT || !allowed) fail(RC.HANDLE);
  if (HIERARCHIES.has(h) && !m.hierarchyEnabled(h)) fail(RC.HIERARCHY);
  return { kind: 'permanent', handle: h };
}

function objectOf(m: TpmMachine, h: number, n: number): Entity {
  const type = h >>> 24;
  if (type !== HT.TRANSIENT && type !== HT.PERSISTENT) fail(RC.HANDLE);
  const obj = m.object(h);
  if (obj === undefined) fail(type === HT.TRANSIENT ? RC.REFERENCE_H0 + n - 1 : RC.HANDLE);
  if (!m.hierarchyEnabled(obj.hierarchy)) fail(RC.HIERARCHY);
  return { kind: 'object', handle: h, obj };
}

function nvOf(m: TpmMachine, h: number): Entity {
  if (h >>> 24 !== HT.NV_INDEX) fail(RC.HANDLE);
  const nv = m.nvIndex(h);
  if (nv === undefined) fail(RC.HANDLE);
  return { kind: 'nv', handle: h, nv };
}

function pcrOf(h: number): Entity {
  if (h >>> 24 !== HT.PCR || h >= LIMITS.PCR_COUNT) fail(RC.VALUE);
  return { kind: 'pcr', handle: h };
}
