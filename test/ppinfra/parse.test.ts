import { describe, expect, it } from 'vitest';
import { parseTaskResult, parseTaskId } from '../../src/ppinfra/parse.ts';

const envelope = (task: object, rest: object = {}) => ({ extra: { has_nsfw_contents: [] }, task, images: [], videos: [], audios: [], ...rest });
const image = (over: object = {}) => ({ image_url: 'https://cdn.example/a.jpeg', image_url_ttl: '0', image_type: 'jpeg', nsfw_detection_result: null, ...over });

describe('parseTaskResult', () => {
  it('parses the documented success example', () => {
    const body = envelope({ task_id: 't1', task_type: 'QWEN_IMAGE_TEXT_TO_IMAGE', status: 'TASK_STATUS_SUCCEED', reason: '', eta: 0, progress_percent: 0 }, { images: [image()] });
    expect(parseTaskResult(body, 't1')).toEqual({
      taskId: 't1', status: 'succeed', rawStatus: 'TASK_STATUS_SUCCEED', reason: '', etaSeconds: 0, progressPercent: 0,
      images: [{ url: 'https://cdn.example/a.jpeg', type: 'jpeg', ttlSeconds: null, nsfw: false, nsfwSignals: { hasNsfwContents: null, detectionResult: null } }],
    });
  });

  it.each([
    ['TASK_STATUS_QUEUED', 'queued'],
    ['TASK_STATUS_PROCESSING', 'processing'],
    ['TASK_STATUS_FAILED', 'failed'],
  ])('maps %s to %s', (raw, status) => {
    expect(parseTaskResult(envelope({ status: raw, reason: raw === 'TASK_STATUS_FAILED' ? 'boom' : '' }), 't').status).toBe(status);
  });

  it('is lenient: numeric strings, numbers, missing arrays and extra', () => {
    const result = parseTaskResult({ task: { status: 'TASK_STATUS_PROCESSING', eta: '12', progress_percent: 40 } }, 't9');
    expect(result).toMatchObject({ taskId: 't9', etaSeconds: 12, progressPercent: 40, images: [] });
    const ttl = parseTaskResult(envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [image({ image_url_ttl: 3600 })] }), 't');
    expect(ttl.images[0]?.ttlSeconds).toBe(3600);
    const ttlString = parseTaskResult(envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [image({ image_url_ttl: '3600' })] }), 't');
    expect(ttlString.images[0]?.ttlSeconds).toBe(3600);
  });

  it.each([
    ['has_nsfw_contents true', { extra: { has_nsfw_contents: [true] } }, image(), true],
    ['nsfw_detection_result present', {}, image({ nsfw_detection_result: { valid: true, confidence: 0.9 } }), true],
    ['has_nsfw_contents false', { extra: { has_nsfw_contents: [false] } }, image(), false],
    ['empty flags', {}, image(), false],
  ])('flags NSFW conservatively: %s', (_name, rest, img, flagged) => {
    const body = { ...envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [img] }), ...rest };
    expect(parseTaskResult(body, 't').images[0]?.nsfw).toBe(flagged);
  });

  it.each([
    ['an unknown status', envelope({ status: 'TASK_STATUS_CANCELED' }), 'TASK_STATUS_CANCELED'],
    ['no status', { task: {} }, 'MISSING_STATUS'],
    ['a success without images', envelope({ status: 'TASK_STATUS_SUCCEED' }), 'NO_IMAGES'],
    ['a success whose images have no URL', envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [{ image_type: 'jpeg' }] }), 'NO_IMAGES'],
    ['a body that is not an object', 'oops', 'MISSING_STATUS'],
  ])('turns %s into a typed task failure', (_name, body, reason) => {
    expect(() => parseTaskResult(body, 't')).toThrow(expect.objectContaining({ kind: 'task_failed', reason }));
  });
});

describe('parseTaskId', () => {
  it('reads task_id and refuses a body without one', () => {
    expect(parseTaskId({ task_id: 'abc' })).toBe('abc');
    expect(() => parseTaskId({})).toThrow(expect.objectContaining({ kind: 'server' }));
  });
});
