"""SPL Token accounts written straight into the VM, and read back for token balances."""

from __future__ import annotations

from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount, TokenAccountState

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "NATIVE_MINT",
    "SYSTEM_PROGRAM_ID",
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
    "TokenBalance",
    "ata",
    "mint_account",
    "read_token_account",
    "token_account",
]

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
NATIVE_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82


def ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return get_associated_token_address(owner, mint)


def mint_account(authority: Pubkey | None, supply: int, decimals: int, rent_lamports: int) -> Account:
    mint = Mint(mint_authority=authority, supply=supply, decimals=decimals, is_initialized=True, freeze_authority=None)
    return Account(lamports=rent_lamports, data=bytes(mint), owner=TOKEN_PROGRAM_ID, executable=False)


def token_account(mint: Pubkey, owner: Pubkey, amount: int, rent_lamports: int) -> Account:
    """A token account holding `amount`; a wrapped-SOL one holds the lamports too, as SyncNative leaves it."""
    native = mint == NATIVE_MINT
    state = TokenAccount(
        mint=mint,
        owner=owner,
        amount=amount,
        delegate=None,
        state=TokenAccountState.Initialized,
        is_native=rent_lamports if native else None,
        delegated_amount=0,
        close_authority=None,
    )
    lamports = rent_lamports + amount if native else rent_lamports
    return Account(lamports=lamports, data=bytes(state), owner=TOKEN_PROGRAM_ID, executable=False)


@dataclass(frozen=True)
class TokenBalance:
    mint: Pubkey
    owner: Pubkey
    amount: int
    program: Pubkey


def read_token_account(account: Account | None) -> TokenBalance | None:
    """The balance an account holds, if it is an SPL Token (or Token-2022) account."""
    if account is None or account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
        return None
    data = bytes(account.data)
    if len(data) < TOKEN_ACCOUNT_LEN or (account.owner == TOKEN_2022_PROGRAM_ID and len(data) == MINT_LEN):
        return None
    if len(data) > TOKEN_ACCOUNT_LEN and data[TOKEN_ACCOUNT_LEN] != 2:  # Token-2022: account type byte
        return None
    parsed = TokenAccount.from_bytes(data[:TOKEN_ACCOUNT_LEN])
    return TokenBalance(parsed.mint, parsed.owner, parsed.amount, account.owner)


def read_mint_decimals(account: Account | None) -> int | None:
    if account is None or account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
        return None
    data = bytes(account.data)
    if len(data) < MINT_LEN:
        return None
    return int(Mint.from_bytes(data[:MINT_LEN]).decimals)
