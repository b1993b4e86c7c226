import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACTIVE_STATES,
  JOB_STATES,
  OPEN_STATES,
  TERMINAL_STATES,
  TRANSITIONS,
  canTransition,
  isJobState,
  isTerminal,
} from '../../src/jobs/states.ts';

test('the happy path is legal step by step', () => {
  const path = ['discovered', 'stable', 'queued', 'exposing', 'importing', 'done'] as const;
  for (let i = 1; i < path.length; i++) assert.ok(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} → ${path[i]}`);
});

test('retry and change edges are legal', () => {
  assert.ok(canTransition('exposing', 'queued'));
  assert.ok(canTransition('importing', 'queued'));
  assert.ok(canTransition('failed', 'queued'));
  assert.ok(canTransition('stable', 'discovered'));
  assert.ok(canTransition('queued', 'discovered'));
});

test('every non-terminal state can be cancelled; terminal states are final except failed → queued', () => {
  for (const s of ACTIVE_STATES) assert.ok(canTransition(s, 'cancelled'), s);
  for (const s of TERMINAL_STATES) {
    assert.ok(isTerminal(s));
    for (const to of JOB_STATES) assert.equal(canTransition(s, to), s === 'failed' && to === 'queued', `${s} → ${to}`);
  }
});

test('shortcuts and rewinds outside the table are illegal', () => {
  assert.equal(canTransition('discovered', 'queued'), false);
  assert.equal(canTransition('queued', 'importing'), false);
  assert.equal(canTransition('exposing', 'done'), true, 'a skip: identical content already in Frame.io');
  assert.equal(canTransition('queued', 'done'), false);
  assert.equal(canTransition('importing', 'exposing'), false);
  assert.equal(canTransition('importing', 'discovered'), false);
  assert.equal(canTransition('done', 'queued'), false);
  for (const s of JOB_STATES) assert.equal(canTransition(s, s), false, `${s} → ${s}`);
});

test('state groups partition consistently', () => {
  assert.deepEqual([...ACTIVE_STATES, ...TERMINAL_STATES].sort(), [...JOB_STATES].sort());
  for (const s of OPEN_STATES) assert.ok(ACTIVE_STATES.includes(s));
  for (const s of ACTIVE_STATES) assert.equal(isTerminal(s), false);
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...JOB_STATES].sort());
  assert.ok(isJobState('queued'));
  assert.equal(isJobState('running'), false);
  assert.equal(isJobState(3), false);
});
