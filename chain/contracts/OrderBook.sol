// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// A small on-chain order contract in the manner of the Linkora order system: a maker escrows the sell
/// token and states the buy amount; a taker fills the whole order; the maker may cancel while it is open.
contract OrderBook {
    struct Order {
        address maker;
        address sellToken;
        address buyToken;
        uint256 sellAmount;
        uint256 buyAmount;
        bool open;
    }

    uint256 public nextId = 1;
    mapping(uint256 => Order) public orders;

    event OrderCreated(
        uint256 indexed id,
        address indexed maker,
        address sellToken,
        address buyToken,
        uint256 sellAmount,
        uint256 buyAmount
    );
    event OrderExecuted(uint256 indexed id, address indexed taker, address indexed maker, uint256 sellAmount, uint256 buyAmount);
    event OrderCancelled(uint256 indexed id, address indexed maker);

    function createOrder(address sellToken, address buyToken, uint256 sellAmount, uint256 buyAmount)
        external
        returns (uint256 id)
    {
        require(sellAmount > 0 && buyAmount > 0, "zero amount");
        id = nextId++;
        orders[id] = Order(msg.sender, sellToken, buyToken, sellAmount, buyAmount, true);
        require(IERC20(sellToken).transferFrom(msg.sender, address(this), sellAmount), "escrow");
        emit OrderCreated(id, msg.sender, sellToken, buyToken, sellAmount, buyAmount);
    }

    function executeOrder(uint256 id) external {
        Order storage o = orders[id];
        require(o.open, "not open");
        o.open = false;
        require(IERC20(o.buyToken).transferFrom(msg.sender, o.maker, o.buyAmount), "pay");
        require(IERC20(o.sellToken).transfer(msg.sender, o.sellAmount), "deliver");
        emit OrderExecuted(id, msg.sender, o.maker, o.sellAmount, o.buyAmount);
    }

    function cancelOrder(uint256 id) external {
        Order storage o = orders[id];
        require(o.open, "not open");
        require(o.maker == msg.sender, "not maker");
        o.open = false;
        require(IERC20(o.sellToken).transfer(o.maker, o.sellAmount), "refund");
        emit OrderCancelled(id, msg.sender);
    }
}
