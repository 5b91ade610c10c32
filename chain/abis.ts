/**
 * The test contracts' ABIs as typed constants, for viem's type inference. contracts.test.ts checks
 * that they equal what solc produces from chain/contracts, so they cannot drift from the sources.
 */
import { parseAbi } from 'viem'

export const testTokenAbi = parseAbi([
  'constructor(string name_, string symbol_, uint8 decimals_)',
  'function name() view returns (string)',
  'function symbol() view returns (string)',
  'function decimals() view returns (uint8)',
  'function totalSupply() view returns (uint256)',
  'function minter() view returns (address)',
  'function balanceOf(address) view returns (uint256)',
  'function allowance(address, address) view returns (uint256)',
  'function mint(address to, uint256 value)',
  'function transfer(address to, uint256 value) returns (bool)',
  'function approve(address spender, uint256 value) returns (bool)',
  'function transferFrom(address from, address to, uint256 value) returns (bool)',
  'function batchTransfer(address[] to, uint256[] value)',
  'event Transfer(address indexed from, address indexed to, uint256 value)',
  'event Approval(address indexed owner, address indexed spender, uint256 value)',
])

export const orderBookAbi = parseAbi([
  'function nextId() view returns (uint256)',
  'function orders(uint256) view returns (address maker, address sellToken, address buyToken, uint256 sellAmount, uint256 buyAmount, bool open)',
  'function createOrder(address sellToken, address buyToken, uint256 sellAmount, uint256 buyAmount) returns (uint256 id)',
  'function executeOrder(uint256 id)',
  'function cancelOrder(uint256 id)',
  'event OrderCreated(uint256 indexed id, address indexed maker, address sellToken, address buyToken, uint256 sellAmount, uint256 buyAmount)',
  'event OrderExecuted(uint256 indexed id, address indexed taker, address indexed maker, uint256 sellAmount, uint256 buyAmount)',
  'event OrderCancelled(uint256 indexed id, address indexed maker)',
])
