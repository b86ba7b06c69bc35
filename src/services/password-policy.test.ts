import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../core/errors.ts';
import { checkNewPassword, commonPasswordCount, MIN_PASSWORD_LENGTH } from './password-policy.ts';

function refusal(password: string, email = 'someone@example.com'): string | undefined {
  try {
    checkNewPassword(password, email);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.field, 'new_password');
    assert.equal(err.status, 422);
    return err.code;
  }
}

test('a new password needs 12 characters (counted as characters, not bytes)', () => {
  assert.equal(MIN_PASSWORD_LENGTH, 12);
  assert.equal(refusal('elevenchars'), 'password_too_short');
  assert.equal(refusal('twelve-chars'), undefined);
  assert.equal(refusal('ééééééééééé'), 'password_too_short', '11 characters, 22 bytes');
});

test('common passwords are refused whatever their case; the email too', () => {
  assert.equal(commonPasswordCount(), 308);
  for (const p of ['password1234', 'PASSWORD1234', 'qwertyuiop123', '1qaz2wsx3edc', 'administrator']) assert.equal(refusal(p), 'password_too_common', p);
  assert.equal(refusal('someone@example.com'), 'password_is_email');
  assert.equal(refusal('correct horse battery staple'), undefined);
});
